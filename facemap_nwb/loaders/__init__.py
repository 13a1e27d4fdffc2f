"""Readers for the files other tools write, such as Facemap's ``*_proc.npy`` results."""
