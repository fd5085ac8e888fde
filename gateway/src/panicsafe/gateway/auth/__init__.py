"""Identity: invitations, enrolment, login with a mandatory second factor, sessions, abuse resistance."""
