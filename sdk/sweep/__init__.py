"""`edgelite sweep`: build the variants (here or as Ray tasks), verify and profile each, and choose
the one to ship from the Pareto front.
"""
