*ò'j%
rolemodelnightly"ops@console