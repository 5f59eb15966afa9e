# LIST-EXTENDED (RFC 5258): selection options SUBSCRIBED, REMOTE,
# RECURSIVEMATCH and SPECIAL-USE, return options SUBSCRIBED, CHILDREN and
# SPECIAL-USE, several patterns, \NonExistent, CHILDINFO; LSUB's \Noselect
# for a level that only holds subscriptions; syntax errors.
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S: a1 OK *
# the special-use set is subscribed when it is created (first use);
# unsubscribed here so that what follows lists only this test's names
C: a0 LIST (SUBSCRIBED) "" *
S: * LIST (\HasNoChildren \Subscribed) "/" "INBOX"
S: * LIST (\HasNoChildren \Archive \Subscribed) "/" "Archive"
S: * LIST (\HasNoChildren \Drafts \Subscribed) "/" "Drafts"
S: * LIST (\HasNoChildren \Junk \Subscribed) "/" "Junk"
S: * LIST (\HasNoChildren \Sent \Subscribed) "/" "Sent"
S: * LIST (\HasNoChildren \Trash \Subscribed) "/" "Trash"
S: a0 OK LIST completed
C: u1 UNSUBSCRIBE INBOX
S: u1 OK UNSUBSCRIBE completed
C: u2 UNSUBSCRIBE Archive
S: u2 OK UNSUBSCRIBE completed
C: u3 UNSUBSCRIBE Drafts
S: u3 OK UNSUBSCRIBE completed
C: u4 UNSUBSCRIBE Junk
S: u4 OK UNSUBSCRIBE completed
C: u5 UNSUBSCRIBE Sent
S: u5 OK UNSUBSCRIBE completed
C: u6 UNSUBSCRIBE Trash
S: u6 OK UNSUBSCRIBE completed
C: a2 CREATE Fruit/Apple
S: a2 OK * CREATE completed
C: a3 CREATE Fruit/Banana
S: a3 OK * CREATE completed
C: a4 CREATE Tofu
S: a4 OK * CREATE completed
C: a5 SUBSCRIBE Fruit/Banana
S: a5 OK SUBSCRIBE completed
C: a6 SUBSCRIBE Tofu
S: a6 OK SUBSCRIBE completed
C: a7 SUBSCRIBE Vegetable/Peas
S: a7 OK SUBSCRIBE completed
# subscribed only: the nonexistent one too
C: b1 LIST (SUBSCRIBED) "" *
S: * LIST (\HasNoChildren \Subscribed) "/" "Fruit/Banana"
S: * LIST (\HasNoChildren \Subscribed) "/" "Tofu"
S: * LIST (\NonExistent \Subscribed) "/" "Vegetable/Peas"
S: b1 OK LIST completed
# RECURSIVEMATCH: parents of subscribed ones, with CHILDINFO
C: b2 LIST (SUBSCRIBED RECURSIVEMATCH) "" %
S: * LIST (\HasChildren) "/" "Fruit" ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\HasNoChildren \Subscribed) "/" "Tofu"
S: * LIST (\NonExistent) "/" "Vegetable" ("CHILDINFO" ("SUBSCRIBED"))
S: b2 OK LIST completed
# without RECURSIVEMATCH the parents are not shown
C: b3 LIST (SUBSCRIBED) "" %
S: * LIST (\HasNoChildren \Subscribed) "/" "Tofu"
S: b3 OK LIST completed
# REMOTE changes nothing here; return SUBSCRIBED marks without filtering
C: b4 LIST (REMOTE) "" Fruit* RETURN (SUBSCRIBED CHILDREN)
S: * LIST (\HasChildren) "/" "Fruit"
S: * LIST (\HasNoChildren) "/" "Fruit/Apple"
S: * LIST (\HasNoChildren \Subscribed) "/" "Fruit/Banana"
S: b4 OK LIST completed
# several patterns, each mailbox once
C: b5 LIST "" (Tofu Fruit/% T*)
S: * LIST (\HasNoChildren) "/" "Fruit/Apple"
S: * LIST (\HasNoChildren) "/" "Fruit/Banana"
S: * LIST (\HasNoChildren) "/" "Tofu"
S: * LIST (\HasNoChildren \Trash) "/" "Trash"
S: b5 OK LIST completed
# SPECIAL-USE selection and return option (RFC 6154)
C: b6 LIST (SPECIAL-USE) "" * RETURN (SPECIAL-USE)
S: * LIST (\HasNoChildren \Archive) "/" "Archive"
S: * LIST (\HasNoChildren \Drafts) "/" "Drafts"
S: * LIST (\HasNoChildren \Junk) "/" "Junk"
S: * LIST (\HasNoChildren \Sent) "/" "Sent"
S: * LIST (\HasNoChildren \Trash) "/" "Trash"
S: b6 OK LIST completed
C: b7 LIST "" * RETURN (SPECIAL-USE)
S: * LIST (\HasNoChildren) "/" "INBOX"
S: * LIST (\HasNoChildren \Archive) "/" "Archive"
S: * LIST (\HasNoChildren \Drafts) "/" "Drafts"
S: * LIST (\HasChildren) "/" "Fruit"
S: * LIST (\HasNoChildren) "/" "Fruit/Apple"
S: * LIST (\HasNoChildren) "/" "Fruit/Banana"
S: * LIST (\HasNoChildren \Junk) "/" "Junk"
S: * LIST (\HasNoChildren \Sent) "/" "Sent"
S: * LIST (\HasNoChildren) "/" "Tofu"
S: * LIST (\HasNoChildren \Trash) "/" "Trash"
S: b7 OK LIST completed
# a pattern that matches nothing
C: b8 LIST (SUBSCRIBED) "" Nothing*
S: b8 OK LIST completed
# LSUB (RFC 3501 6.3.9): a level holding only subscriptions is \Noselect
C: c1 LSUB "" %
S: * LSUB (\Noselect) "/" "Fruit"
S: * LSUB () "/" "Tofu"
S: * LSUB (\Noselect) "/" "Vegetable"
S: c1 OK LSUB completed
C: c2 LSUB "" *
S: * LSUB () "/" "Fruit/Banana"
S: * LSUB () "/" "Tofu"
S: * LSUB () "/" "Vegetable/Peas"
S: c2 OK LSUB completed
# errors
C: d1 LIST (RECURSIVEMATCH) "" *
S: d1 BAD *
C: d2 LIST (BOGUS) "" *
S: d2 BAD *
C: d3 LIST "" * RETURN (BOGUS)
S: d3 BAD *
C: d4 LIST "" ()
S: d4 BAD *
C: d5 LIST "" * RETURN
S: d5 BAD *
C: d6 LSUB "" (a b)
S: d6 BAD *
C: d7 LOGOUT
S: * BYE *
S: d7 OK *
