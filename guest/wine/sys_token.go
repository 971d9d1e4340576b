package wine

import "encoding/binary"

// Security tokens: the guest runs as a plain user of a fixed local
// account (S-1-5-21-0-0-0-1000), member of Everyone, Users and
// Authenticated Users, at medium integrity, not elevated.

type token struct{ impersonation bool }

func (t *token) typeName() string { return "Token" }

// sid encodes a SID: revision 1, authority, sub-authorities.
func sid(authority byte, subs ...uint32) []byte {
	b := make([]byte, 8+4*len(subs))
	b[0] = 1
	b[1] = byte(len(subs))
	b[7] = authority
	for i, s := range subs {
		binary.LittleEndian.PutUint32(b[8+4*i:], s)
	}
	return b
}

func userSID() []byte { return sid(5, 21, 0, 0, 0, 1000) }

// UserSIDString is the guest user's SID as text (the HKEY_USERS key).
const UserSIDString = "S-1-5-21-0-0-0-1000"

// NtOpenProcessToken(process, access, *handle)
func ntOpenProcessToken(p *Process, c *call) ntstatus {
	if o, st := p.objectOf(c.arg(0)); st != STATUS_SUCCESS || o != p {
		return STATUS_INVALID_HANDLE
	}
	c.put64(c.arg(2), p.handles.add(&token{}, c.arg32(1)))
	return STATUS_SUCCESS
}

// NtOpenProcessTokenEx(process, access, attributes, *handle)
func ntOpenProcessTokenEx(p *Process, c *call) ntstatus {
	if o, st := p.objectOf(c.arg(0)); st != STATUS_SUCCESS || o != p {
		return STATUS_INVALID_HANDLE
	}
	c.put64(c.arg(3), p.handles.add(&token{}, c.arg32(1)))
	return STATUS_SUCCESS
}

// NtOpenThreadToken(Ex): threads do not impersonate.
func ntOpenThreadToken(p *Process, c *call) ntstatus {
	if _, st := p.threadOf(c.arg(0)); st != STATUS_SUCCESS {
		return st
	}
	return STATUS_NO_TOKEN
}

// NtDuplicateToken(token, access, attr, effective_only, type, *new)
func ntDuplicateToken(p *Process, c *call) ntstatus {
	if _, st := p.tokenOf(c.arg(0)); st != STATUS_SUCCESS {
		return st
	}
	c.put64(c.arg(5), p.handles.add(&token{impersonation: c.arg32(4) == 2}, c.arg32(1)))
	return STATUS_SUCCESS
}

func (p *Process) tokenOf(h uint64) (*token, ntstatus) {
	switch h {
	case currentProcessToken, currentThreadToken, currentEffectiveToken:
		return &token{}, STATUS_SUCCESS
	}
	o, st := p.objectOf(h)
	if st != STATUS_SUCCESS {
		return nil, st
	}
	t, ok := o.(*token)
	if !ok {
		return nil, STATUS_OBJECT_TYPE_MISMATCH
	}
	return t, STATUS_SUCCESS
}

// Token information classes.
const (
	TokenUser                = 1
	TokenGroups              = 2
	TokenPrivileges          = 3
	TokenOwner               = 4
	TokenPrimaryGroup        = 5
	TokenDefaultDacl         = 6
	TokenSource              = 7
	TokenType                = 8
	TokenImpersonationLevel  = 9
	TokenStatistics          = 10
	TokenSessionId           = 12
	TokenGroupsAndPrivileges = 13
	TokenElevationType       = 18
	TokenLinkedToken         = 19
	TokenElevation           = 20
	TokenVirtualizationAllow = 23
	TokenVirtualizationEnab  = 24
	TokenIntegrityLevel      = 25
	TokenUIAccess            = 26
	TokenLogonSid            = 28
	TokenIsAppContainer      = 29
	TokenAppContainerSid     = 31
)

// NtQueryInformationToken(token, class, buffer, length, *ret_len)
func ntQueryInformationToken(p *Process, c *call) ntstatus {
	tk, st := p.tokenOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	class, buf, length, retPtr := c.arg32(1), c.arg(2), c.arg32(3), c.arg(4)
	c.note("class=%d", class)
	var b memw
	// sidAndAttrs lays out n SID_AND_ATTRIBUTES {Sid*, Attributes} at off
	// with the SIDs after them.
	sidList := func(head int, sids [][]byte, attrs []uint32) memw {
		size := head + 16*len(sids)
		for _, s := range sids {
			size += len(s)
		}
		out := make(memw, size)
		pos := head + 16*len(sids)
		for i, s := range sids {
			out.u64(head+16*i, buf+uint64(pos))
			out.u32(head+16*i+8, attrs[i])
			copy(out[pos:], s)
			pos += len(s)
		}
		return out
	}
	switch class {
	case TokenUser:
		b = sidList(0, [][]byte{userSID()}, []uint32{0})
	case TokenGroups:
		sids := [][]byte{sid(1, 0), sid(5, 32, 545), sid(5, 11), sid(5, 4), sid(2, 0), sid(5, 5, 0, 1)}
		attrs := []uint32{7, 7, 7, 7, 7, 0xc0000007}
		b = sidList(8, sids, attrs)
		b.u32(0, uint32(len(sids)))
	case TokenLogonSid:
		b = sidList(8, [][]byte{sid(5, 5, 0, 1)}, []uint32{0xc0000007})
		b.u32(0, 1)
	case TokenPrivileges:
		// SeChangeNotifyPrivilege (23), enabled by default.
		b = make(memw, 4+12)
		b.u32(0, 1)
		b.u32(4, 23)
		b.u32(12, 3)
	case TokenOwner, TokenPrimaryGroup:
		u := userSID()
		b = make(memw, 8+len(u))
		b.u64(0, buf+8)
		copy(b[8:], u)
	case TokenDefaultDacl:
		// ACL granting GENERIC_ALL to the user and to SYSTEM.
		acl := aclAllowing(userSID(), sid(5, 18))
		b = make(memw, 8+len(acl))
		b.u64(0, buf+8)
		copy(b[8:], acl)
	case TokenSource:
		b = make(memw, 16)
		copy(b, "rspstub\x00")
	case TokenType:
		b = make(memw, 4)
		b.u32(0, 1)
		if tk.impersonation {
			b.u32(0, 2)
		}
	case TokenImpersonationLevel:
		if !tk.impersonation {
			return STATUS_INVALID_INFO_CLASS
		}
		b = make(memw, 4)
		b.u32(0, 2) // SecurityImpersonation
	case TokenStatistics:
		b = make(memw, 56)
		b.u64(0, 0x3e7)
		b.u64(8, 0x3e7)
		b.u32(32, 1)
		b.u32(40, 6)
		b.u32(44, 1)
	case TokenSessionId, TokenElevationType, TokenElevation, TokenVirtualizationAllow,
		TokenVirtualizationEnab, TokenUIAccess, TokenIsAppContainer:
		b = make(memw, 4)
		switch class {
		case TokenSessionId:
			b.u32(0, 1)
		case TokenElevationType:
			b.u32(0, 1) // TokenElevationTypeDefault
		}
	case TokenIntegrityLevel:
		b = sidList(0, [][]byte{sid(16, 0x2000)}, []uint32{0x60}) // medium
	case TokenLinkedToken:
		b = make(memw, 8)
		b.u64(0, p.handles.add(&token{}, 0))
	case TokenAppContainerSid:
		b = make(memw, 8)
	default:
		return STATUS_INVALID_INFO_CLASS
	}
	c.put32(retPtr, uint32(len(b)))
	if length < uint32(len(b)) {
		return STATUS_BUFFER_TOO_SMALL
	}
	c.putBytes(buf, b)
	return STATUS_SUCCESS
}

// aclAllowing builds an ACL with one ACCESS_ALLOWED_ACE (GENERIC_ALL) per SID.
func aclAllowing(sids ...[]byte) []byte {
	size := 8
	for _, s := range sids {
		size += 8 + len(s)
	}
	b := make(memw, size)
	b.u8(0, 2) // ACL_REVISION
	b.u16(2, uint16(size))
	b.u16(4, uint16(len(sids)))
	pos := 8
	for _, s := range sids {
		b.u8(pos, 0) // ACCESS_ALLOWED_ACE_TYPE
		b.u16(pos+2, uint16(8+len(s)))
		b.u32(pos+4, GENERIC_ALL)
		copy(b[pos+8:], s)
		pos += 8 + len(s)
	}
	return b
}

// NtAdjustPrivilegesToken(token, disable_all, new, length, prev, *ret_len)
func ntAdjustPrivilegesToken(p *Process, c *call) ntstatus {
	if _, st := p.tokenOf(c.arg(0)); st != STATUS_SUCCESS {
		return st
	}
	c.put32(c.arg(5), 0)
	return STATUS_NOT_ALL_ASSIGNED
}

// NtAccessCheck(descriptor, token, desired, mapping, privs, *privs_len,
// *granted, *status): everything is granted.
func ntAccessCheck(p *Process, c *call) ntstatus {
	desired := c.arg32(2)
	if desired&MAXIMUM_ALLOWED != 0 {
		desired = 0x1f01ff
	}
	c.put32(c.arg(6), desired)
	c.put32(c.arg(7), uint32(STATUS_SUCCESS))
	return STATUS_SUCCESS
}

// NtPrivilegeCheck(token, privileges, *result)
func ntPrivilegeCheck(p *Process, c *call) ntstatus {
	c.put32(c.arg(2), 0)
	return STATUS_SUCCESS
}
