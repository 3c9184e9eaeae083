"""fastgate.ops"""
