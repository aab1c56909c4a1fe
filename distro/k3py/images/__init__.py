"""Container images k3py makes itself: OCI archives from files (the pause image, test images)."""
