package http

// registerLists registers the list scrub and suppression-list routes.
func (s *Server) registerLists() {}
