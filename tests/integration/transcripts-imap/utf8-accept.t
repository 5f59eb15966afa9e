# UTF8=ACCEPT (RFC 6855): ENABLE, UTF-8 mailbox names in quoted strings
# and in LIST / STATUS replies, APPEND UTF8 (literal); before ENABLE names
# are modified UTF-7 and raw 8-bit names and APPEND UTF8 are refused.
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S~ ^a1 OK \[CAPABILITY .*UTF8=ACCEPT
C: a2 CREATE "Körbe"
S: a2 NO *
C: a3 CREATE K&APY-rbe/Äpfel
S: a3 NO *
C: a4 CREATE K&APY-rbe/&AMQ-pfel
S: a4 OK * CREATE completed
C= a5 APPEND INBOX UTF8 ({4+}\r\nx: y)\r\n
S: a5 BAD *
C: b1 ENABLE UTF8=ACCEPT
S: * ENABLED UTF8=ACCEPT
S: b1 OK ENABLE completed
C: b2 ENABLE UTF8=ACCEPT
S: * ENABLED
S: b2 OK ENABLE completed
C: b3 LIST "" "Körbe*"
S: * LIST (\HasChildren) "/" "Körbe"
S: * LIST (\HasNoChildren) "/" "Körbe/Äpfel"
S: b3 OK LIST completed
C: b4 CREATE "日本語"
S: b4 OK * CREATE completed
C: b5 STATUS "日本語" (MESSAGES)
S: * STATUS "日本語" (MESSAGES 0)
S: b5 OK STATUS completed
C= b6 APPEND "日本語" UTF8 (~{27+}\r\nSubject: Grüße\r\n\r\nHallo\r\n)\r\n
S: b6 OK [APPENDUID * 1] APPEND completed
C: b7 STATUS "日本語" (MESSAGES SIZE)
S: * STATUS "日本語" (MESSAGES 1 SIZE 27)
S: b7 OK STATUS completed
C: b8 SELECT "日本語"
DRAIN~ ^\* 
S: b8 OK *
C: b9 FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]
S: * 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {*}
S: Subject: Grüße
S: 
S: )
S: b9 OK *
C= b10 CREATE "bad\xff\xfename"\r\n
S: b10 NO *
C: b11 APPEND INBOX UTF8 NOTALIST
S: b11 BAD *
C: b12 LOGOUT
S: * BYE *
S: b12 OK *
