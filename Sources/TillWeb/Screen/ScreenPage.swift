/// The customer-facing screen (`GET /screen`): one self-contained page (no framework, no
/// external file, so it works on a till with no internet) for a second screen or a 7-inch
/// tablet facing the customer. It shows the basket and total as the sale goes, the change due
/// when paid, and a "receipt by email / join" form the customer fills in themselves.
///
/// Rules it keeps: every text from the POS is set with `textContent` (a product name is never
/// markup); the form never remembers anything (`autocomplete="off"`, emptied when the sale
/// changes: the next customer must not see the last one's address); consent boxes start
/// unticked, one per channel, and the text box for SMS is needed only for the SMS box.
enum ScreenPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, maximum-scale=1, user-scalable=no">
<title>Your basket</title>
<style>
  :root { --ink: #111; --soft: #666; --line: #ddd; --accent: #0a6b3d; --bad: #a11; font-size: clamp(16px, 2.1vw, 28px); }
  * { box-sizing: border-box; }
  html, body { margin: 0; height: 100%; font-family: system-ui, "DejaVu Sans", sans-serif; color: var(--ink); background: #fafafa; }
  body { display: grid; grid-template-columns: 3fr 2fr; grid-template-rows: minmax(0, 1fr); height: 100vh; overflow: hidden; }
  @media (max-aspect-ratio: 1/1) { body { grid-template-columns: 1fr; grid-template-rows: minmax(0, 1fr) auto; } }
  main { display: flex; flex-direction: column; padding: .8rem 1.2rem; min-height: 0; overflow: hidden; }
  h1 { font-size: 1.5rem; margin: 0 0 .6rem; font-weight: 600; }
  #lines { list-style: none; margin: 0; padding: 0; flex: 1 1 auto; min-height: 0; overflow: hidden; display: flex; flex-direction: column; justify-content: flex-end; }
  #lines li { display: flex; justify-content: space-between; gap: 1rem; padding: .35rem 0; border-bottom: 1px solid var(--line); font-size: 1.1rem; }
  #lines li .qty { color: var(--soft); margin-right: .4rem; }
  #lines li .amount { font-variant-numeric: tabular-nums; white-space: nowrap; }
  .totals { border-top: 3px solid var(--ink); padding-top: .5rem; }
  .row { display: flex; justify-content: space-between; font-variant-numeric: tabular-nums; }
  #total-row { font-size: 2.4rem; font-weight: 700; }
  #paid-row, #change-row { font-size: 1.4rem; }
  #change-row { color: var(--accent); font-weight: 700; font-size: 2rem; }
  #welcome { flex: 1; display: flex; align-items: center; justify-content: center; font-size: 2.6rem; color: var(--soft); text-align: center; }
  aside { background: #fff; border-left: 1px solid var(--line); padding: .8rem 1.2rem; display: flex; flex-direction: column; justify-content: center; overflow-y: auto; min-height: 0; }
  @media (max-aspect-ratio: 1/1) { aside { border-left: 0; border-top: 1px solid var(--line); } }
  aside h2 { font-size: 1.25rem; margin: 0 0 .3rem; }
  label { display: block; margin: .4rem 0 .15rem; }
  input[type=email], input[type=tel] { width: 100%; font-size: 1.15rem; padding: .4rem .6rem; border: 2px solid #999; border-radius: .4rem; }
  .tick { display: flex; align-items: center; gap: .6rem; margin: .45rem 0; }
  .tick label { margin: 0; }
  .tick input { width: 1.6rem; height: 1.6rem; }
  button { margin-top: .4rem; width: 100%; font-size: 1.25rem; padding: .6rem; border: 0; border-radius: .4rem; background: var(--accent); color: #fff; }
  button:disabled { background: #999; }
  .small { font-size: .7rem; color: var(--soft); margin-top: .3rem; }
  #message { min-height: 1.4em; margin-top: .4rem; }
  #message.bad { color: var(--bad); }
  #thanks { font-size: 1.6rem; color: var(--accent); text-align: center; }
  #offline { position: fixed; top: .4rem; right: .6rem; font-size: .7rem; color: var(--bad); }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<main>
  <h1 id="heading">Welcome</h1>
  <div id="welcome">Welcome!</div>
  <ul id="lines" hidden></ul>
  <div class="totals" id="totals" hidden>
    <div class="row" id="total-row"><span>Total</span><span id="total"></span></div>
    <div class="row" id="paid-row" hidden><span>Paid</span><span id="paid"></span></div>
    <div class="row" id="change-row" hidden><span>Change</span><span id="change"></span></div>
  </div>
</main>
<aside id="side" hidden>
  <form id="join" autocomplete="off" novalidate>
    <h2>Receipt by email / join us</h2>
    <label for="email">Your email</label>
    <input id="email" name="email" type="email" inputmode="email" autocomplete="off" autocapitalize="off" spellcheck="false" required>
    <label for="phone">Your mobile (optional)</label>
    <input id="phone" name="phone" type="tel" inputmode="tel" autocomplete="off">
    <div class="tick"><input id="email_marketing" type="checkbox"><label for="email_marketing">Email me news and offers</label></div>
    <div class="tick"><input id="sms_marketing" type="checkbox"><label for="sms_marketing">Text me offers</label></div>
    <button id="send" type="submit">Send</button>
    <div id="message" role="status"></div>
    <div class="small">We keep your email with your purchases, for receipts, returns and guarantees. Offers only if you tick a box. Ask us to change or delete your details at any time.</div>
  </form>
  <div id="thanks" hidden>Thank you! We have your details.</div>
</aside>
<div id="offline" hidden>reconnecting…</div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let current = { state: "idle" };
let formSale = null;

function render(basket) {
  current = basket;
  const active = basket.state === "open" || basket.state === "paid";
  $("welcome").hidden = active;
  $("welcome").textContent = basket.state === "voided" ? "Sale cancelled" : "Welcome!";
  $("lines").hidden = !active;
  $("totals").hidden = !active;
  $("heading").textContent = basket.state === "paid" ? "Thank you!" : (active ? "Your basket" : "Welcome");
  const list = $("lines");
  list.replaceChildren(...(basket.lines || []).map((line) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    if (line.qty && line.qty !== "1") {
      const qty = document.createElement("span");
      qty.className = "qty";
      qty.textContent = line.qty + " ×";
      name.append(qty);
    }
    name.append(document.createTextNode(line.name));
    const amount = document.createElement("span");
    amount.className = "amount";
    amount.textContent = line.amount;
    item.append(name, amount);
    return item;
  }));
  const money = (value) => (basket.currency ? basket.currency + " " : "") + value;
  $("total").textContent = money(basket.total || "0.00");
  $("paid-row").hidden = !basket.paid;
  $("paid").textContent = basket.paid ? money(basket.paid) : "";
  $("change-row").hidden = !basket.change;
  $("change").textContent = basket.change ? money(basket.change) : "";
  // The form: for the sale on the screen only, emptied for each new sale.
  if (basket.sale !== formSale) {
    formSale = basket.sale || null;
    $("join").reset();
    $("message").textContent = "";
    $("send").disabled = false;
  }
  // No sale on tilld's socket (Odoo's order, shown as it sends it): nothing to attach a form to.
  $("side").hidden = !active || !basket.sale;
  $("join").hidden = !!basket.identified;
  $("thanks").hidden = !basket.identified;
}

function connect() {
  const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/screen/ws");
  socket.onopen = () => { $("offline").hidden = true; };
  socket.onmessage = (message) => render(JSON.parse(message.data));
  socket.onclose = () => { $("offline").hidden = false; setTimeout(connect, 1000); };
}

$("sms_marketing").addEventListener("change", () => {
  if ($("sms_marketing").checked && !$("phone").value.trim()) $("phone").focus();
});

$("join").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = $("message");
  message.className = "";
  message.textContent = "Sending…";
  $("send").disabled = true;
  const body = {
    sale: current.sale,
    email: $("email").value,
    phone: $("phone").value,
    consent: { email_marketing: $("email_marketing").checked, sms_marketing: $("sms_marketing").checked },
  };
  try {
    const response = await fetch("/screen/identify", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const answer = await response.json();
    if (response.ok) {
      message.textContent = "";
      $("join").hidden = true;
      $("thanks").hidden = false;
    } else {
      message.className = "bad";
      message.textContent = answer.message || "That did not work; please ask at the till.";
      $("send").disabled = false;
      if (answer.field && $(answer.field)) $(answer.field).focus();
    }
  } catch (error) {
    message.className = "bad";
    message.textContent = "The till did not answer; please try again.";
    $("send").disabled = false;
  }
});

connect();
</script>
</body>
</html>
"""#
}
