# The chart of bench/compare's table: three panels, one per workload, one
# bar per system, log scale (the systems differ by orders of magnitude).
# run.sh calls it with: dat (data file: label, p50, p99, pairs/s,
# handovers/s), png (output), rtt (the TCP round-trip floor, µs), when,
# machine.
set terminal pngcairo size 1500,560 font "DejaVu Sans,10"
set output png
set style fill solid 0.85 border -1
set boxwidth 0.6
set logscale y
set grid ytics
set key off
set xtics nomirror rotate by -25 scale 0
set xrange [-0.6:*]
set offsets 0, 0.6, 0, 0
set lmargin 10
# udlm's rows blue, the peers each their own colour.
colour(x) = x == 0 ? 0x1f5fa8 : x == 1 ? 0x8fb3dc : x == 2 ? 0xc0392b : x == 3 ? 0x2e8b57 : 0xd68910

set multiplot layout 1,3 title sprintf("Locks on loopback: udlm (3 nodes, remote master) vs Redis, etcd, ZooKeeper — %s, %s", when, machine) font ",12"

set title "1 client, acquire+release (µs, lower is better)\nbar p50, dot p99, dashed: TCP round trip"
set yrange [1:*]
set arrow 1 from graph 0, first rtt to graph 1, first rtt nohead dt 2 lw 1.5 lc rgb "#555555" front
plot dat using 0:2:(colour($0)):xtic(1) with boxes lc rgb variable, \
     '' using 0:3 with points pt 7 ps 1.1 lc rgb "black", \
     '' using 0:2:(sprintf("%.0f", $2)) with labels offset 0,-0.8 font ",9" tc rgb "white"
unset arrow 1

set title "8 clients, each its own names\n(acquire+release pairs/s, higher is better)"
set yrange [10:*]
plot dat using 0:4:(colour($0)):xtic(1) with boxes lc rgb variable, \
     '' using 0:4:(sprintf("%.0f", $4)) with labels offset 0,0.8 font ",9"

set title "4 clients, one name\n(handovers/s, higher is better)"
plot dat using 0:5:(colour($0)):xtic(1) with boxes lc rgb variable, \
     '' using 0:5:(sprintf("%.0f", $5)) with labels offset 0,0.8 font ",9"

unset multiplot
