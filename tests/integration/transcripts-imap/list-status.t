# LIST-STATUS (RFC 5819): RETURN (STATUS (...)) gives a STATUS after each
# selectable mailbox, none for \NonExistent ones; bad item lists refused.
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S: a1 OK *
C: a2 CREATE Lists/tern
S: a2 OK * CREATE completed
C: a3 SUBSCRIBE Gone/Away
S: a3 OK SUBSCRIBE completed
C: a4 LIST "" (INBOX Lists*) RETURN (STATUS (MESSAGES UNSEEN SIZE))
S: * LIST (\HasNoChildren) "/" "INBOX"
S~ ^\* STATUS "INBOX" \(MESSAGES 2 UNSEEN 2 SIZE [1-9][0-9]*\)$
S: * LIST (\HasChildren) "/" "Lists"
S: * STATUS "Lists" (MESSAGES 0 UNSEEN 0 SIZE 0)
S: * LIST (\HasNoChildren) "/" "Lists/tern"
S: * STATUS "Lists/tern" (MESSAGES 0 UNSEEN 0 SIZE 0)
S: a4 OK LIST completed
C: a5 LIST (SUBSCRIBED) "" G* RETURN (STATUS (MESSAGES))
S: * LIST (\NonExistent \Subscribed) "/" "Gone/Away"
S: a5 OK LIST completed
# RECENT: the two delivered messages, not yet claimed by a SELECT
C: a6 LIST "" INBOX RETURN (CHILDREN STATUS (UIDNEXT UIDVALIDITY DELETED RECENT))
S: * LIST (\HasNoChildren) "/" "INBOX"
S~ ^\* STATUS "INBOX" \(RECENT 2 UIDNEXT 3 UIDVALIDITY [0-9]+ DELETED 0\)$
S: a6 OK LIST completed
C: a7 LIST "" INBOX RETURN (STATUS ())
S: a7 BAD *
C: a8 LIST "" INBOX RETURN (STATUS (BOGUS))
S: a8 BAD *
C: a9 LIST "" INBOX RETURN (STATUS)
S: a9 BAD *
C: a10 LIST "" INBOX RETURN (STATUS (MESSAGES) STATUS (UNSEEN))
S: a10 BAD *
C: a11 LOGOUT
S: * BYE *
S: a11 OK *
