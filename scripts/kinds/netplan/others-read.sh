# The netplan files beside the managed one: which of them configure the
# managed interface is worked out by spine from their content.
@@files@@
