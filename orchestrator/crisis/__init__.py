"""The crisis cell: who is told (the directory) and how (email, webhook).
"""
