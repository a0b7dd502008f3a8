# Scripts run one after the other: the changes (or the checks, or the
# activations) of network changes activated together.
#% for s in scripts
@@s@@
#% endfor
