"""Identity primitives: passwords, TOTP, recovery codes, passkeys and QR codes for enrolment."""
