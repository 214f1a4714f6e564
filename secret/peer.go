package secret

import (
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
)

// OpenPeer unseals a peer's private and preshared keys, for its client
// config.
func (k *Keyring) OpenPeer(sec wgbot.PeerSecrets) (priv, psk wgtypes.Key, err error) {
	rawPriv, err := k.Open(sec.PrivateKeySealed, sec.KeyID, []byte(sec.PublicKey))
	if err != nil {
		return priv, psk, err
	}
	if psk, err = k.OpenPresharedKey(sec); err != nil {
		return priv, psk, err
	}
	copy(priv[:], rawPriv)
	return priv, psk, nil
}

// OpenPresharedKey unseals only a peer's preshared key: all a WireGuard
// host needs of it.
func (k *Keyring) OpenPresharedKey(sec wgbot.PeerSecrets) (wgtypes.Key, error) {
	var psk wgtypes.Key
	raw, err := k.Open(sec.PresharedSealed, sec.KeyID, []byte(sec.PublicKey))
	copy(psk[:], raw)
	return psk, err
}
