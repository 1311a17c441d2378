"""What a conversion writes: the file (atomically), the edgelite record and standard metadata inside
it, and the target's steps after converting (pre-flight placement, Edge TPU compiler).
"""
