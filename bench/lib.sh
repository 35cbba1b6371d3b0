# Shell helpers the comparison scripts share.

# median: the median of the numbers on standard input (one or more per line).
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
