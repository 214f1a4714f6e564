package main

import (
	"context"
	"fmt"

	"wgbot/postgres"
)

func (op *operatorCmd) users(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "show") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintf(op.out, "usage: wgbot %s\n", usageUsers)
			return nil
		}
		return usageError{"users: want list or show\nusage: wgbot " + usageUsers}
	}
	fs := op.flags("users " + args[0])
	if args[0] == "list" {
		if _, err := op.parse(fs, usageUsers, args[1:], 0); err != nil {
			return err
		}
		return op.usersList(ctx)
	}
	pos, err := op.parse(fs, usageUsers, args[1:], 1)
	if err != nil {
		return err
	}
	return op.usersShow(ctx, pos[0])
}

func (op *operatorCmd) usersList(ctx context.Context) error {
	store, closeDB, err := op.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	list, err := store.ListUsers(ctx)
	if err != nil {
		return err
	}
	rows := make([]userRow, len(list))
	for i, u := range list {
		rows[i] = userRow{userView: viewUser(u.User), Subscription: viewSubscriptionPtr(u.Subscription), Devices: u.Devices}
	}
	if op.json {
		return op.writeJSON(rows)
	}
	tw := newTable(op.out)
	fmt.Fprintln(tw, "ID\tTELEGRAM ID\tUSERNAME\tLANGUAGE\tSUBSCRIPTION\tEXPIRES (UTC)\tDEVICES")
	for _, r := range rows {
		status, expires := "-", "-"
		if r.Subscription != nil {
			status, expires = r.Subscription.label(), fmtTime(r.Subscription.ExpiresAt)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%d\n", r.ID, r.TelegramID, at(r.Username), dash(r.Language), status, expires, r.Devices)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(op.out, "%d user(s)\n", len(rows))
	return nil
}

func (op *operatorCmd) usersShow(ctx context.Context, ref string) error {
	store, closeDB, err := op.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	u, err := findUser(ctx, store, ref)
	if err != nil {
		return err
	}
	subs, err := store.Subscriptions(ctx, u.ID)
	if err != nil {
		return err
	}
	peers, err := store.ListPeers(ctx, postgres.PeerFilter{UserID: u.ID})
	if err != nil {
		return err
	}
	payments, err := store.UserPayments(ctx, u.ID)
	if err != nil {
		return err
	}
	v := userDetail{User: viewUser(u), Subscriptions: []subscriptionView{}, Devices: []peerView{}, Payments: []paymentView{}}
	for _, s := range subs {
		v.Subscriptions = append(v.Subscriptions, viewSubscription(s))
	}
	for _, p := range peers {
		v.Devices = append(v.Devices, viewPeer(p))
	}
	for _, p := range payments {
		v.Payments = append(v.Payments, viewPayment(p))
	}
	if op.json {
		return op.writeJSON(v)
	}
	tw := newTable(op.out)
	fmt.Fprintf(tw, "user\t%d\n", v.User.ID)
	fmt.Fprintf(tw, "telegram id\t%d\n", v.User.TelegramID)
	fmt.Fprintf(tw, "username\t%s\n", at(v.User.Username))
	fmt.Fprintf(tw, "name\t%s\n", dash(v.User.FirstName))
	fmt.Fprintf(tw, "language\t%s\n", dash(v.User.Language))
	fmt.Fprintf(tw, "registered\t%s UTC\n", fmtTime(v.User.CreatedAt))
	fmt.Fprintf(tw, "banned\t%s\n", yesNo(v.User.Banned))
	fmt.Fprintf(tw, "blocked the bot\t%s\n", yesNo(v.User.BlockedBot))
	if err := tw.Flush(); err != nil {
		return err
	}

	var subRows, deviceRows, paymentRows []string
	for _, s := range v.Subscriptions {
		subRows = append(subRows, fmt.Sprintf("%d\t%s\t%s\t%d\t%s\t%s", s.ID, s.Plan, s.label(), s.DeviceLimit, fmtTime(s.StartsAt), fmtTime(s.ExpiresAt)))
	}
	for _, p := range v.Devices {
		deviceRows = append(deviceRows, fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s", p.ID, p.Name, p.Server, p.IP, dash(p.IP6), p.Status, p.PublicKey, fmtTime(p.CreatedAt)))
	}
	for _, p := range v.Payments {
		paymentRows = append(paymentRows, fmt.Sprintf("%d\t%s\t%s\t%d %s\t%d\t%s\t%s\t%s", p.ID, p.Provider, p.ProviderPaymentID, p.Amount, p.Currency,
			p.Days, p.Status, fmtTime(p.AppliedAt), dash(p.Flagged)))
	}
	op.section("subscriptions", "ID\tPLAN\tSTATUS\tDEVICE LIMIT\tSTARTS (UTC)\tEXPIRES (UTC)", subRows)
	op.section("devices", "ID\tNAME\tSERVER\tIP\tIPV6\tSTATUS\tPUBLIC KEY\tCREATED (UTC)", deviceRows)
	return op.section("payments", "ID\tPROVIDER\tPAYMENT ID\tAMOUNT (MINOR UNITS)\tDAYS\tSTATUS\tAPPLIED (UTC)\tFLAG", paymentRows)
}

// section prints a titled, indented table of rows under header, or
// "none".
func (op *operatorCmd) section(title, header string, rows []string) error {
	fmt.Fprintf(op.out, "\n%s:\n", title)
	if len(rows) == 0 {
		fmt.Fprintln(op.out, "  none")
		return nil
	}
	tw := newTable(op.out)
	fmt.Fprintln(tw, "  "+header)
	for _, r := range rows {
		fmt.Fprintln(tw, "  "+r)
	}
	return tw.Flush()
}
