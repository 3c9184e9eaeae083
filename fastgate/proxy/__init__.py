"""fastgate.proxy"""
