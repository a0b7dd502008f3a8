#!/bin/sh
# Detached on the host: unless confirmed in time (the armed marker is gone),
# restore the old network file and re-apply it.
sleep @@secs@@
[ -e @@armed@@ ] || exit 0
if [ -e @@backup@@@@path@@ ]; then
  cp -a -- @@backup@@@@path@@ @@path@@
elif [ -e @@backup@@@@path@@.absent ]; then
  rm -f -- @@path@@
fi
netplan apply
rm -f -- @@armed@@
date > @@record@@
