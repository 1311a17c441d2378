"""Live video: where frames come from (files, cameras, network streams, the Pi camera) and the
bounded, newest-frame-first loop that runs a task over them.
"""
