# Remove files, each kept under $BK first.
#% for path in paths
sp_backup @@path@@
rm -f -- @@path@@
printf 'removed %s\n' @@path@@
#% endfor
