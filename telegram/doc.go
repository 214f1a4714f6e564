// Package telegram is wgbot's Telegram bot: menus, the free trial, Stars and
// provider checkouts, devices, config delivery, admin commands and
// broadcasts, in Russian and English. It turns updates into calls of the
// service, which holds every rule, and sends through one rate-limited,
// retrying sender that other packages also use to notify users.
package telegram
