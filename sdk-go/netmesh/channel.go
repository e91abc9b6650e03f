package netmesh

/*
#include <net.h>
*/
import "C"

// ChannelHash is the 16-bit hash of a valid channel name (the low 16 bits
// of XXH3-64 of its UTF-8 bytes). An invalid name is ErrChannelInvalidName
// (the *Error's Message names the rule broken); invalid UTF-8 is
// ErrInvalidArgument.
func ChannelHash(name string) (uint16, error) {
	var out C.uint16_t
	err := check("net_channel_hash", func() C.net_status_t {
		return C.net_channel_hash(stringPtr(name), C.size_t(len(name)), &out)
	})
	return uint16(out), err
}

// ValidateChannel returns nil for a valid channel name, else an error
// matching ErrChannelInvalidName (or ErrInvalidArgument for invalid UTF-8).
func ValidateChannel(name string) error {
	return check("net_channel_validate", func() C.net_status_t {
		return C.net_channel_validate(stringPtr(name), C.size_t(len(name)))
	})
}
