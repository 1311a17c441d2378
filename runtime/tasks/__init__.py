"""What a model is for: images in (preprocessing as the record says), answers out (classify, detect,
embed, raw), comparing two models' answers, and drawing them.
"""
