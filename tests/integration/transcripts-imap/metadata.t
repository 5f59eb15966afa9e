# METADATA (RFC 5464): server and mailbox entries, private and shared,
# DEPTH, MAXSIZE with LONGENTRIES, NIL for an absent entry, removal,
# literal values, entry-name errors, limits, read-only server /shared,
# a missing mailbox, and entries kept across RENAME, dropped by DELETE.
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S: a1 OK *
C: a2 GETMETADATA "" /shared/admin
S: * METADATA "" (/shared/admin "mailto:postmaster@*")
S: a2 OK GETMETADATA completed
C: a3 SETMETADATA INBOX (/private/comment "my inbox" /shared/comment "shared note")
S: a3 OK SETMETADATA completed
C: a4 GETMETADATA INBOX (/private/comment /shared/comment /private/absent)
S: * METADATA "INBOX" (/private/comment "my inbox" /shared/comment "shared note" /private/absent NIL)
S: a4 OK GETMETADATA completed
C: a5 SETMETADATA INBOX (/PRIVATE/Vendor/Tern/Color {4+}
C: blue /private/vendor/tern/size "12345678901234567890")
S: a5 OK SETMETADATA completed
C: a6 GETMETADATA (DEPTH infinity MAXSIZE 10) INBOX /private
S: * METADATA "INBOX" (/private/comment "my inbox" /private/vendor/tern/color "blue")
S: a6 OK [METADATA LONGENTRIES 20] GETMETADATA completed
C: a7 GETMETADATA (DEPTH 1) INBOX /private/vendor
S: a7 OK GETMETADATA completed
C: a8 SETMETADATA INBOX (/private/comment NIL)
S: a8 OK SETMETADATA completed
C: a9 GETMETADATA INBOX /private/comment
S: * METADATA "INBOX" (/private/comment NIL)
S: a9 OK GETMETADATA completed
C: a10 SETMETADATA INBOX (/other/comment "x")
S: a10 BAD *
C: a11 SETMETADATA INBOX (/private/a*b "x")
S: a11 BAD *
C: a12 SETMETADATA INBOX (/private/x)
S: a12 BAD *
C: a13 SETMETADATA "" (/shared/admin "mailto:me@example.test")
S: a13 NO [NOPERM] *
C: a14 SETMETADATA "" (/private/motd "hello")
S: a14 OK SETMETADATA completed
C: a15 GETMETADATA "" /private/motd
S: * METADATA "" (/private/motd "hello")
S: a15 OK GETMETADATA completed
C: a16 SETMETADATA NoSuchBox (/private/comment "x")
S: a16 NO [NONEXISTENT] *
C: a17 GETMETADATA (DEPTH 2) INBOX /private
S: a17 BAD *
C: a18 CREATE Projects
S: a18 OK *
C: a19 SETMETADATA Projects (/private/comment "work")
S: a19 OK SETMETADATA completed
C: a20 RENAME Projects Work
S: a20 OK *
C: a21 GETMETADATA Work /private/comment
S: * METADATA "Work" (/private/comment "work")
S: a21 OK GETMETADATA completed
C: a22 DELETE Work
S: a22 OK *
C: a23 CREATE Work
S: a23 OK *
C: a24 GETMETADATA Work /private/comment
S: * METADATA "Work" (/private/comment NIL)
S: a24 OK GETMETADATA completed
C: a25 LOGOUT
S: * BYE *
S: a25 OK *
