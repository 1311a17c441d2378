"""Beyond one machine: profiling a fleet of boards over SSH, and batch prediction on a Ray cluster.
"""
