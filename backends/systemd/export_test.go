package systemd

// DropConnection closes the Manager's connection to the manager from fleet's
// side, as when the socket breaks while systemd stays up.
func DropConnection(m *Manager) {
	m.mu.Lock()
	c := m.conn
	m.mu.Unlock()
	if c != nil {
		c.bus.Close()
	}
}
