# IDLE: "+ idling", DONE ends it; a bad line ends it with BAD.
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S: a1 OK *
C: a2 SELECT INBOX
DRAIN~ ^\* 
S: a2 OK [READ-WRITE] SELECT completed
C: a3 IDLE
S: + idling
SILENT 300
C: done
S: a3 OK IDLE terminated
C: a4 IDLE
S: + idling
C: a5 NOOP
S: a4 BAD Expected DONE to end IDLE
C: a6 LOGOUT
S: * BYE *
S: a6 OK *
