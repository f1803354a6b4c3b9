"""System events that monitoring has to follow: process lifecycle and memory hotplug.

``proc``: exit and exec of target processes (the kernel's process connector
through pyroute2, or pidfds where the connector is unavailable).
``memory``: physical memory ranges from ``/proc/iomem`` as paddr regions.
``uevents``: memory hotplug uevents through pyudev, and a follower that
recomputes paddr regions when memory comes or goes.
``lifecycle``: hands process exits to an engine operations set.

Imports nothing of kdamon but ``errors`` and ``model``; pyroute2 and pyudev
are imported only when a watcher starts.
"""
