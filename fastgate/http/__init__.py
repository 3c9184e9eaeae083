"""fastgate.http"""
