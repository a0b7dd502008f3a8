#!/bin/sh
# Detached on the host: unless confirmed in time (the armed marker is gone),
# restore the files the change wrote and activate them again.
sleep @@secs@@
[ -e @@armed@@ ] || exit 0
#% for path in files
if [ -e @@backup@@@@path@@ ]; then
  cp -a -- @@backup@@@@path@@ @@path@@
  chmod -- "$(cat -- @@backup@@@@path@@.mode)" @@path@@
elif [ -e @@backup@@@@path@@.absent ]; then
  rm -f -- @@path@@
fi
#% endfor
@@activate@@
rm -f -- @@armed@@ @@activated@@
date > @@record@@
