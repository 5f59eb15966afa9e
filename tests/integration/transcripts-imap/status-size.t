# STATUS=SIZE (RFC 8438), APPENDLIMIT (RFC 7889) and the other STATUS
# items; the size grows by exactly the appended bytes; errors.
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S~ ^a1 OK \[CAPABILITY .*STATUS=SIZE.* APPENDLIMIT=[0-9]+\]
C: a2 CREATE Sized
S: a2 OK * CREATE completed
C: a3 STATUS Sized (SIZE MESSAGES)
S: * STATUS "Sized" (MESSAGES 0 SIZE 0)
S: a3 OK STATUS completed
C= a4 APPEND Sized {20+}\r\nSubject: x\r\n\r\nbody\r\n\r\n
S: a4 OK [APPENDUID * 1] APPEND completed
C= a5 APPEND Sized (\\Seen) {14}\r\n
S: + *
C= Subject: y\r\n\r\n\r\n
S: a5 OK [APPENDUID * 2] APPEND completed
C: a6 STATUS Sized (SIZE MESSAGES UNSEEN APPENDLIMIT)
S~ ^\* STATUS "Sized" \(MESSAGES 2 UNSEEN 1 SIZE 34 APPENDLIMIT [0-9]+\)$
S: a6 OK STATUS completed
C: a7 STATUS Sized ()
S: a7 BAD *
C: a8 STATUS Sized SIZE
S: a8 BAD *
C: a9 STATUS Nowhere (SIZE)
S: a9 NO [NONEXISTENT] *
C: a10 STATUS
S: a10 BAD *
C: a11 LOGOUT
S: * BYE *
S: a11 OK *
