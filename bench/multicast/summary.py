#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""summary.py RESULTS.txt: the lines of run.sh as one row per cell (N, loss,
MTU) with every tool side by side, shoal's rate against the limit line
(iperf, same N and MTU, no loss) and against uftp, and egress. Markdown.
A cell run several times (run.sh --repeat) shows its median run (by
rate; the lower middle one of an even count) and the range of its rates
in brackets; the ratios are of medians."""
import re
import statistics
import sys


def parse(path):
    cells = {}
    for line in open(path):
        if line.startswith('#') or not line.strip() or line.startswith('results'):
            continue
        f = line.split()
        tool = f[0]
        kv = dict(re.findall(r'([\w/]+)=\s*([^\s]+)', line.replace('= ', '=')))
        try:
            n = int(kv['N'])
            loss = int(kv['loss'].rstrip('%'))
            mtu = int(kv['mtu'])
            rate = float(kv['MB/s/rcv'])
        except (KeyError, ValueError):
            continue
        ok = kv.get('ok', '-')
        eg = kv.get('egress/file', '-')
        cells.setdefault((tool, n, loss, mtu), []).append((rate, ok, eg, kv.get('file', '–')))
    return {k: median_run(runs) for k, runs in cells.items()}


def median_run(runs):
    """the run of median rate, its rate with the range when there are several"""
    rates = sorted(r[0] for r in runs)
    mid = statistics.median_low(rates)
    run = next(r for r in runs if r[0] == mid)
    shown = f'{mid} [{rates[0]}–{rates[-1]}]' if len(runs) > 1 else f'{mid}'
    return (mid, run[1], run[2], run[3], shown)


def main():
    cells = parse(sys.argv[1])
    keys = sorted({(n, loss, mtu) for (_, n, loss, mtu) in cells}, key=lambda k: (k[2], k[0], k[1]))
    print('| MTU | N | loss | file | limit line MB/s | shoal MB/s | × line | shoal egress | uftp MB/s (egress) | '
          'shoal ÷ uftp | udpcast MB/s (ok) | shoal ok |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    # shoal-4m (4 MiB chunks) gets rows of its own, after shoal's
    for tool in ('shoal', 'shoal-4m'):
        for n, loss, mtu in keys:
            if (tool, n, loss, mtu) not in cells:
                continue
            line = cells.get(('iperf', n, 0, mtu))
            s = cells[(tool, n, loss, mtu)]
            u = cells.get(('uftp', n, loss, mtu))
            c = cells.get(('udpcast', n, loss, mtu))
            ratio = f'{s[0] / line[0]:.2f}×' if line else '–'
            vs_u = f'{s[0] / u[0]:.1f}×' if u and u[0] > 0 and u[1].split('/')[0] == u[1].split('/')[-1] else '–'
            name = '' if tool == 'shoal' else ' (4 MiB chunks)'
            print(f'| {mtu}{name} | {n} | {loss} % | {s[3]} | {line[4] if line else "–"} | **{s[4]}** | {ratio} | '
                  f'{s[2]} | {f"{u[4]} ({u[2]})" if u else "–"} | {vs_u} | {f"{c[4]} ({c[1]})" if c else "–"} | '
                  f'{s[1]} |')


if __name__ == '__main__':
    main()
