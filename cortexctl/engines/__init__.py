"""Engine adapters: recipe → command line / container spec, health probe, log diagnosis."""
