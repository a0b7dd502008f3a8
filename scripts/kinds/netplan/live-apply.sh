# Nothing to write: the netplan files are as the registry wants them (or are
# changed by the changes activated together with this one); activating them
# makes the live network follow.
printf 'activating the netplan files on disk for %s\n' @@interface@@
