# CREATE, DELETE, RENAME, SUBSCRIBE, LIST, LSUB, STATUS, with their errors.
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S: a1 OK *
C: a2 LIST "" ""
S: * LIST (\Noselect) "/" ""
S: a2 OK LIST completed
C: a3 CREATE Work/Projects/
S: a3 OK * CREATE completed
C: a4 CREATE work/projects
S: a4 OK * CREATE completed
C: a5 CREATE Work/Projects
S: a5 NO [ALREADYEXISTS] *
C: a6 CREATE inbox
S: a6 NO [ALREADYEXISTS] *
C: a7 LIST "" Work*
S: * LIST (\HasChildren) "/" "Work"
S: * LIST (\HasNoChildren) "/" "Work/Projects"
S: a7 OK LIST completed
C: a8 LIST "" %
DRAIN~ ^\* LIST \(\\Has
S: a8 OK LIST completed
C: a8b NOOP
S: a8b OK NOOP completed
C: a9 LIST "Work/" %
S: * LIST (\HasNoChildren) "/" "Work/Projects"
S: a9 OK LIST completed
C: a10 LIST "" Tr*
S: * LIST (\HasNoChildren \Trash) "/" "Trash"
S: a10 OK LIST completed
C: a11 SUBSCRIBE Work
S: a11 OK SUBSCRIBE completed
C: a12 LSUB "" W*
S: * LSUB () "/" "Work"
S: a12 OK LSUB completed
C: a13 UNSUBSCRIBE Work
S: a13 OK UNSUBSCRIBE completed
C: a14 LSUB "" W*
S: a14 OK LSUB completed
C: a15 RENAME Work Play
S: a15 OK RENAME completed
C: a16 LIST "" Play*
S: * LIST (\HasChildren) "/" "Play"
S: * LIST (\HasNoChildren) "/" "Play/Projects"
S: a16 OK LIST completed
C: a17 RENAME Nothing Else
S: a17 NO [NONEXISTENT] *
C: a18 RENAME Play Trash
S: a18 NO [ALREADYEXISTS] *
C: a19 DELETE Play
S: a19 NO *
C: a20 DELETE Play/Projects
S: a20 OK DELETE completed
C: a21 DELETE Play
S: a21 OK DELETE completed
C: a22 DELETE Play
S: a22 NO [NONEXISTENT] *
C: a23 DELETE INBOX
S: a23 NO *
# no SELECT has claimed the two delivered messages: both are recent
C: a24 STATUS INBOX (MESSAGES UIDNEXT UNSEEN RECENT SIZE)
S: * STATUS "INBOX" (MESSAGES 2 RECENT 2 UIDNEXT 3 UNSEEN 2 SIZE *)
S: a24 OK STATUS completed
C: a25 STATUS Nowhere (MESSAGES)
S: a25 NO [NONEXISTENT] *
C: a26 STATUS INBOX (BOGUS)
S: a26 BAD *
C: a27 CREATE &AOQ-rger
S: a27 OK * CREATE completed
C: a28 LIST "" &AOQ-*
S: * LIST (\HasNoChildren) "/" "&AOQ-rger"
S: a28 OK LIST completed
C: a29 CREATE &Jjo
S: a29 NO *
C: a30 LOGOUT
S: * BYE *
S: a30 OK *
