"""PanicSAFE video service.

WebRTC rooms for crisis cells: an SFU that forwards encoded media, TURN credentials from coturn.
"""
