# Remove the netplan files that also configure the managed interface, each
# kept under $BK first (the rollback puts them back from there).
#% for path in paths
sp_backup @@path@@
rm -f -- @@path@@
printf 'removed %s\n' @@path@@
#% endfor
