# SORT (RFC 5256) with every key family, REVERSE, SORT=DISPLAY, ESORT
# COUNT, UID SORT, THREAD=REFERENCES and THREAD=ORDEREDSUBJECT on four
# appended messages (worked out by hand: dates 3<1<2<4, base subjects
# "a other" for 3 and 4 ([fwd: ...] is a forward), "b topic" for 1 and 2,
# 2 replies to 1), and the errors: bad criteria, unknown charset.
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S: a1 OK *
C: a2 CREATE Sorted
S: a2 OK *
C: a3 APPEND Sorted {105+}
C: From: Zoe <z@x.test>
C: Subject: b topic
C: Date: Tue, 02 Jan 2024 10:00:00 +0000
C: Message-ID: <a@t>
C: 
C: one
C: 
S: a3 OK *
C: a4 APPEND Sorted {126+}
C: From: adam@x.test
C: Subject: Re: b topic
C: Date: Wed, 03 Jan 2024 10:00:00 +0000
C: Message-ID: <b@t>
C: In-Reply-To: <a@t>
C: 
C: two
C: 
S: a4 OK *
C: a5 APPEND Sorted {104+}
C: From: mike@x.test
C: Subject: a other
C: Date: Mon, 01 Jan 2024 10:00:00 +0000
C: Message-ID: <c@t>
C: 
C: three
C: 
S: a5 OK *
C: a6 APPEND Sorted {113+}
C: From: Bea <b@x.test>
C: Subject: [fwd: a other]
C: Date: Thu, 04 Jan 2024 10:00:00 +0000
C: Message-ID: <d@t>
C: 
C: four
C: 
S: a6 OK *
C: a7 SELECT Sorted
DRAIN~ ^\* 
S: a7 OK [READ-WRITE] *
C: a8 SORT (DATE) UTF-8 ALL
S: * SORT 3 1 2 4
S: a8 OK *
C: a9 SORT (SUBJECT) UTF-8 ALL
S: * SORT 3 4 1 2
S: a9 OK *
C: a10 SORT (REVERSE SIZE) US-ASCII ALL
S: * SORT 2 4 1 3
S: a10 OK *
C: a11 SORT (FROM) UTF-8 ALL
S: * SORT 2 4 3 1
S: a11 OK *
C: a12 SORT (DISPLAYFROM) UTF-8 ALL
S: * SORT 2 4 3 1
S: a12 OK *
C: a13 SORT (REVERSE DATE) UTF-8 NOT FROM mike
S: * SORT 4 2 1
S: a13 OK *
C: a14 UID SORT (SUBJECT DATE) UTF-8 ALL
S: * SORT 3 4 1 2
S: a14 OK *
C: a15 SORT RETURN (COUNT) (DATE) UTF-8 ALL
S: * ESEARCH (TAG "a15") COUNT 4
S: a15 OK *
C: a16 THREAD REFERENCES UTF-8 ALL
S: * THREAD (3 4)(1 2)
S: a16 OK *
C: a17 THREAD ORDEREDSUBJECT UTF-8 ALL
S: * THREAD (3 4)(1 2)
S: a17 OK *
C: a18 SORT (SIZE BOGUS) UTF-8 ALL
S: a18 BAD *
C: a19 SORT (DATE) KOI8-R ALL
S: a19 NO [BADCHARSET *
C: a20 THREAD NOSUCHALGORITHM UTF-8 ALL
S: a20 BAD *
C: a21 SORT () UTF-8 ALL
S: a21 BAD *
C: a22 LOGOUT
S: * BYE *
S: a22 OK *
