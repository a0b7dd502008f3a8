# Confirmed over a fresh connection once the activation has finished:
# disarm the rollback timer.
[ -e @@activated@@ ] || { echo SPINE-NOT-ACTIVE-YET; exit 0; }
rm -f -- @@armed@@ @@activated@@ && echo SPINE-DISARMED
