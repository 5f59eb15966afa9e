# Limits before login: 8 KiB lines, 8 KiB literals (refused before the
# client sends them), LITERAL+ past the limit skipped, not parsed.
@port imaps
S: * OK *
C: a1 NOOP {{9000*x}}
S: a1 BAD *
C: a2 LOGIN {9000}
S: a2 NO [TOOBIG] *
C: a3 NOOP
S: a3 OK NOOP completed
C: a4 LOGIN @USER@ {9000+}
C= {{818*a5 LOGOUT\r\n}}xx\r\n
S: a4 NO [TOOBIG] *
C: a6 NOOP
S: a6 OK NOOP completed
C: a7 LOGIN @USER@ pw-Secret-1
S: a7 OK *
C: a8 APPEND INBOX {60000000}
S: a8 NO [TOOBIG] *
C: a9 LOGOUT
S: * BYE *
S: a9 OK *
