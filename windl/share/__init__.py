"""Sharing: publishing releases to the stores of their scope, DOIs, access for named people."""
