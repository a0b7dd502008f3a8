# Confirmed over a fresh connection: disarm the rollback timer.
rm -f -- @@armed@@ && echo SPINE-DISARMED
