package http

// registerPage registers the agent's web page and its assets.
func (s *Server) registerPage() {}
