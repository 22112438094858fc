package importer

import (
	"strconv"
	"strings"
)

// Services maps service names to port numbers, as /etc/services does.
// The zero value (or a nil pointer) knows no names; numeric service
// names are always understood.
type Services struct {
	ports map[string]int // "name/proto" → port, for names and aliases
}

// ParseServices reads the contents of a services(5) file: lines of
// "NAME PORT/PROTOCOL [ALIAS...]", with '#' starting a comment. Lines it
// cannot read are skipped, as getservent(3) skips them. The first entry
// for a name wins, again as getservbyname(3) has it.
func ParseServices(data []byte) *Services {
	s := &Services{ports: map[string]int{}}
	for line := range strings.Lines(string(data)) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := fields(line)
		if len(f) < 2 {
			continue
		}
		portStr, proto, ok := strings.Cut(f[1], "/")
		if !ok || proto == "" {
			continue
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 0 || port > 65535 {
			continue
		}
		for _, name := range append([]string{f[0]}, f[2:]...) {
			key := name + "/" + proto
			if _, dup := s.ports[key]; !dup {
				s.ports[key] = port
			}
		}
	}
	return s
}

// Port returns the port of a service name for a protocol ("tcp" or
// "udp"). A decimal number is its own port.
func (s *Services) Port(name, proto string) (int, bool) {
	if isDigits(name) {
		n, err := strconv.Atoi(name)
		if err != nil || n > 65535 {
			return 0, false
		}
		return n, true
	}
	if s == nil {
		return 0, false
	}
	p, ok := s.ports[name+"/"+proto]
	return p, ok
}

// FallbackServices is a services(5) excerpt for hosts without
// /etc/services (minimal containers often lack it): the services inetd
// and xinetd configurations commonly name, with the ports IANA assigns.
const FallbackServices = `
tcpmux 1/tcp
echo 7/tcp
echo 7/udp
discard 9/tcp sink null
discard 9/udp sink null
systat 11/tcp users
daytime 13/tcp
daytime 13/udp
netstat 15/tcp
qotd 17/tcp quote
chargen 19/tcp ttytst source
chargen 19/udp ttytst source
ftp-data 20/tcp
ftp 21/tcp
ssh 22/tcp
telnet 23/tcp
smtp 25/tcp mail
time 37/tcp timserver
time 37/udp timserver
nameserver 42/tcp name
whois 43/tcp nicname
tacacs 49/tcp
tacacs 49/udp
domain 53/tcp
domain 53/udp
bootps 67/udp
bootpc 68/udp
tftp 69/udp
gopher 70/tcp
finger 79/tcp
http 80/tcp www
kerberos 88/tcp kerberos5 krb5 kerberos-sec
kerberos 88/udp kerberos5 krb5 kerberos-sec
pop3 110/tcp pop-3
sunrpc 111/tcp portmapper
sunrpc 111/udp portmapper
auth 113/tcp authentication tap ident
nntp 119/tcp readnews untp
ntp 123/udp
netbios-ns 137/udp
netbios-dgm 138/udp
netbios-ssn 139/tcp
imap2 143/tcp imap
snmp 161/udp
imaps 993/tcp
pop3s 995/tcp
https 443/tcp
microsoft-ds 445/tcp
exec 512/tcp
biff 512/udp comsat
login 513/tcp
who 513/udp whod
shell 514/tcp cmd
syslog 514/udp
printer 515/tcp spooler
talk 517/udp
ntalk 518/udp
uucp 540/tcp uucpd
klogin 543/tcp
kshell 544/tcp krcmd
nntps 563/tcp snntp
submission 587/tcp
ldaps 636/tcp
rsync 873/tcp
swat 901/tcp
cvspserver 2401/tcp
nut 3493/tcp
svn 3690/tcp subversion
distcc 3632/tcp
git 9418/tcp
amanda 10080/tcp
amanda 10080/udp
`

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
