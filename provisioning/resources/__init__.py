"""The resource kinds a stack manages, one module each; :mod:`.registry` lists them in order."""
