"""Reports on recorded snapshots: heatmaps, working set sizes, raw dumps.

Report functions return text or write to a stream they are given; the CLI
decides where output goes.
"""
