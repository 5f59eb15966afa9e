# CREATE-SPECIAL-USE (RFC 6154 3): CREATE name (USE (attr)), the attribute
# shown by LIST; unsupported attributes, several at once and bad syntax
# refused with [USEATTR] or BAD; nothing is created on a refusal.
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S~ ^a1 OK \[CAPABILITY .*CREATE-SPECIAL-USE
C: a2 CREATE Old/2023 (USE (\Archive))
S: a2 OK * CREATE completed
C: a3 LIST "" Old/*
S: * LIST (\HasNoChildren \Archive) "/" "Old/2023"
S: a3 OK LIST completed
C: a4 CREATE Spam2 (USE (\junk))
S: a4 OK * CREATE completed
C: a5 LIST (SPECIAL-USE) "" Spam*
S: * LIST (\HasNoChildren \Junk) "/" "Spam2"
S: a5 OK LIST completed
C: a6 CREATE Plain (USE ())
S: a6 OK * CREATE completed
C: a7 LIST "" Plain
S: * LIST (\HasNoChildren) "/" "Plain"
S: a7 OK LIST completed
C: b1 CREATE Every (USE (\All))
S: b1 NO [USEATTR] *
C: b2 CREATE Flags (USE (\Flagged))
S: b2 NO [USEATTR] *
C: b3 CREATE Two (USE (\Sent \Trash))
S: b3 NO [USEATTR] *
C: b4 CREATE Bogus (USE (\Bogus))
S: b4 NO [USEATTR] *
C: b5 CREATE Bad (FOO (\Sent))
S: b5 BAD *
C: b6 CREATE Bad (USE \Sent)
S: b6 BAD *
C: b7 CREATE Bad (USE (Sent))
S: b7 BAD *
C: b8 CREATE Bad USE
S: b8 BAD *
C: b9 CREATE Old/2023 (USE (\Archive))
S: b9 NO [ALREADYEXISTS] *
C: b10 LIST "" (Every Flags Two Bogus Bad)
S: b10 OK LIST completed
C: b11 LOGOUT
S: * BYE *
S: b11 OK *
