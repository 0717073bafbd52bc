"""Video APIs behind one protocol (`base.Provider`); EvoLink is the implementation."""
