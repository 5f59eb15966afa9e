# limits.errors = 20: the 20th protocol error ends the session with 421.
S: 220 *
C: EHLO client.test
R
C: XYZZY 1
S~ ^50[02] 5\.5\.[12]
C: XYZZY 2
S~ ^50[02] 5\.5\.[12]
C: XYZZY 3
S~ ^50[02] 5\.5\.[12]
C: XYZZY 4
S~ ^50[02] 5\.5\.[12]
C: XYZZY 5
S~ ^50[02] 5\.5\.[12]
C: XYZZY 6
S~ ^50[02] 5\.5\.[12]
C: XYZZY 7
S~ ^50[02] 5\.5\.[12]
C: XYZZY 8
S~ ^50[02] 5\.5\.[12]
C: XYZZY 9
S~ ^50[02] 5\.5\.[12]
C: XYZZY 10
S~ ^50[02] 5\.5\.[12]
C: XYZZY 11
S~ ^50[02] 5\.5\.[12]
C: XYZZY 12
S~ ^50[02] 5\.5\.[12]
C: XYZZY 13
S~ ^50[02] 5\.5\.[12]
C: XYZZY 14
S~ ^50[02] 5\.5\.[12]
C: XYZZY 15
S~ ^50[02] 5\.5\.[12]
C: XYZZY 16
S~ ^50[02] 5\.5\.[12]
C: XYZZY 17
S~ ^50[02] 5\.5\.[12]
C: XYZZY 18
S~ ^50[02] 5\.5\.[12]
C: XYZZY 19
S~ ^50[02] 5\.5\.[12]
C: XYZZY 20
S? 50*
S: 421 4.*
CLOSED
