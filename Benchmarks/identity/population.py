#!/usr/bin/env python3
"""A synthetic till population with ground truth, for measuring identity resolution.

Writes the records a till box (and an old customer list) would have collected about a set of
people, one CSV row per identification, in the columns `till-crm import` reads by default:

    record_id, captured_at, given_name, family_name, email, phone, loyalty_card, postcode

and beside it the truth: which person each record is, and the hard cases that person is part
of (a tag per case), so a score can be broken down by case.

What makes it hard is what makes real till data hard (docs/identity.md):
- households share a landline, sometimes an email, always a surname and a postcode;
- twins share all of that and differ in the given name;
- mobile numbers are recycled: a number a person gave years ago comes back under a stranger;
- common full names repeat across strangers (John Smith, Anna Müller, Piotr Nowak);
- one person appears under a nickname (Jon / Jonathan, Kathi / Katharina), with or without
  accents (Jürgen / Juergen / Jurgen, Łukasz / Lukasz), with typos in names, emails
  (gmial.com) and phone digits, with Gmail aliases (dots, +tags);
- national-format phones from several countries (a German visitor's "0151 ...") in a British
  shop, with the postcode or email that says where they are from;
- people change email address and lose loyalty cards, which are replaced with new numbers;
- many records carry one identifier only, and often no name.

Usage:
    population.py [--people 6000] [--seed 1] [--out records.csv] [--truth truth.csv]

Deterministic for a seed. Standard library only.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import string
import sys
import unicodedata
from dataclasses import dataclass, field

# --- names by culture: (formal given name, [nicknames people also give]), family names ---------

GIVEN = {
    "gb": {
        "m": [("Jonathan", ["Jon", "Jonny"]), ("John", ["Johnny", "Jack"]), ("James", ["Jim", "Jamie"]), ("William", ["Will", "Bill"]),
              ("Robert", ["Rob", "Bob"]), ("Richard", ["Rich", "Rick"]), ("Thomas", ["Tom"]), ("Michael", ["Mike", "Mick"]),
              ("Christopher", ["Chris"]), ("Daniel", ["Dan", "Danny"]), ("David", ["Dave"]), ("Matthew", ["Matt"]),
              ("Andrew", ["Andy", "Drew"]), ("Edward", ["Ed", "Ted"]), ("Benjamin", ["Ben"]), ("Samuel", ["Sam"]),
              ("Alexander", ["Alex"]), ("Nicholas", ["Nick"]), ("Anthony", ["Tony"]), ("Stephen", ["Steve"]),
              ("Oliver", ["Ollie"]), ("Harry", []), ("George", []), ("Peter", ["Pete"]), ("Mark", []), ("Paul", []),
              ("Simon", []), ("Gareth", []), ("Rhys", []), ("Callum", []), ("Owen", []), ("Liam", []), ("Noah", []),
              ("Arthur", ["Art"]), ("Henry", ["Harry"]), ("Patrick", ["Pat", "Paddy"]), ("Philip", ["Phil"]),
              ("Timothy", ["Tim"]), ("Kenneth", ["Ken"]), ("Gregory", ["Greg"]), ("Frederick", ["Fred", "Freddie"])],
        "f": [("Katherine", ["Kate", "Katie", "Kathy"]), ("Elizabeth", ["Liz", "Beth", "Lizzie"]), ("Margaret", ["Maggie", "Meg"]),
              ("Rebecca", ["Becky"]), ("Jennifer", ["Jen", "Jenny"]), ("Jessica", ["Jess"]), ("Victoria", ["Vicky", "Tori"]),
              ("Deborah", ["Debbie"]), ("Eleanor", ["Ellie", "Nell"]), ("Caroline", ["Carol", "Carrie"]), ("Susan", ["Sue", "Susie"]),
              ("Sarah", []), ("Emily", ["Emmy"]), ("Charlotte", ["Lottie", "Charlie"]), ("Olivia", ["Liv"]), ("Sophie", []),
              ("Amelia", ["Amy", "Millie"]), ("Isabel", ["Izzy", "Bella"]), ("Abigail", ["Abby"]), ("Samantha", ["Sam"]),
              ("Lucy", []), ("Grace", []), ("Chloe", []), ("Hannah", []), ("Megan", []), ("Rachel", []), ("Laura", []),
              ("Natalie", ["Nat"]), ("Alexandra", ["Alex", "Sandra"]), ("Patricia", ["Pat", "Trish"]), ("Dorothy", ["Dot"]),
              ("Zoë", []), ("Siân", []), ("Niamh", []), ("Aoife", [])],
    },
    "de": {
        "m": [("Jürgen", ["Jürg"]), ("Wolfgang", ["Wolf"]), ("Klaus", []), ("Stefan", []), ("Thomas", ["Tom"]), ("Michael", []),
              ("Andreas", ["Andi"]), ("Markus", []), ("Matthias", []), ("Sebastian", ["Basti"]), ("Maximilian", ["Max"]),
              ("Johannes", ["Hannes", "Hans"]), ("Lukas", []), ("Jörg", []), ("Uwe", []), ("Dieter", []), ("Günther", []),
              ("Björn", []), ("Sören", []), ("Ulrich", ["Uli"]), ("Friedrich", ["Fritz"]), ("Heinrich", ["Heinz"]), ("Tobias", [])],
        "f": [("Katharina", ["Kathi", "Katja"]), ("Franziska", ["Franzi"]), ("Stefanie", ["Steffi"]), ("Gabriele", ["Gabi"]),
              ("Ursula", ["Uschi", "Ulla"]), ("Christiane", ["Tina"]), ("Susanne", []), ("Anja", []), ("Jana", []), ("Lena", []),
              ("Bärbel", []), ("Sabine", []), ("Käthe", []), ("Monika", []), ("Birgit", []),
              ("Elisabeth", ["Lisa", "Liesl"]), ("Margarete", ["Grete"]), ("Johanna", ["Hanna"]), ("Dörte", [])],
    },
    "fr": {
        "m": [("François", []), ("Jean", []), ("Pierre", []), ("Étienne", []), ("Nicolas", ["Nico"]), ("Sébastien", ["Seb"]),
              ("Jérôme", []), ("Mathieu", []), ("Guillaume", []), ("Frédéric", ["Fred"]), ("Benoît", []), ("Olivier", [])],
        "f": [("Hélène", []), ("Amélie", []), ("Élodie", []), ("Céline", []), ("Margaux", []), ("Camille", []), ("Léa", []),
              ("Isabelle", ["Isa"]), ("Nathalie", []), ("Stéphanie", ["Steph"]), ("Françoise", [])],
    },
    "pl": {
        "m": [("Łukasz", []), ("Paweł", []), ("Wojciech", ["Wojtek"]), ("Krzysztof", []), ("Tomasz", ["Tomek"]), ("Piotr", []),
              ("Grzegorz", []), ("Michał", []), ("Przemysław", ["Przemek"]), ("Jarosław", ["Jarek"]), ("Jakub", ["Kuba"])],
        "f": [("Małgorzata", ["Gosia"]), ("Katarzyna", ["Kasia"]), ("Agnieszka", []), ("Joanna", ["Asia"]), ("Zofia", ["Zosia"]),
              ("Barbara", ["Basia"]), ("Elżbieta", ["Ela"]), ("Magdalena", ["Magda"]), ("Anna", ["Ania"])],
    },
    "cz": {
        "m": [("Jiří", []), ("Tomáš", []), ("Lukáš", []), ("Jan", []), ("Petr", []), ("Ondřej", []), ("Václav", [])],
        "f": [("Tereza", []), ("Lenka", []), ("Kateřina", []), ("Markéta", []), ("Zuzana", [])],
    },
    "gr": {
        "m": [("Γιώργος", []), ("Δημήτρης", []), ("Νίκος", []), ("Κώστας", [])],
        "f": [("Μαρία", []), ("Ελένη", []), ("Κατερίνα", []), ("Σοφία", [])],
    },
    "it": {
        "m": [("Giuseppe", ["Beppe"]), ("Francesco", []), ("Alessandro", []), ("Lorenzo", []), ("Matteo", []), ("Niccolò", [])],
        "f": [("Giulia", []), ("Francesca", []), ("Chiara", []), ("Federica", []), ("Alessia", [])],
    },
    "es": {
        "m": [("José", ["Pepe"]), ("Francisco", ["Paco"]), ("Ignacio", ["Nacho"]), ("Álvaro", []), ("Sergio", []), ("Iñigo", [])],
        "f": [("María", []), ("Dolores", ["Lola"]), ("Lucía", []), ("Begoña", []), ("Inés", [])],
    },
}

FAMILY = {
    "gb": ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright", "Thompson",
           "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke", "Patel", "Khan", "Lewis",
           "James", "Phillips", "Mason", "Mitchell", "Rose", "Davis", "Rodriguez", "Cox", "Alexander", "Morgan", "Moore",
           "Hughes", "Edwards", "Hill", "Harris", "Clark", "Turner", "Cooper", "Ward", "Morris", "Baker", "Young", "Allen",
           "King", "Scott", "Adams", "Campbell", "Anderson", "Kelly", "Murphy", "O'Brien", "O'Neill", "Price", "Bennett",
           "Gray", "Griffiths", "Lloyd", "Powell", "Fox", "Shaw", "Ellis", "Palmer", "Holmes", "Barker", "Knight", "Harvey",
           "Fletcher", "Hunt", "Reid", "Foster", "Marshall", "Owen", "Chapman", "Webb", "Lee", "Singh", "Ali", "Hussain",
           "Begum", "Ahmed", "Chen", "Wang", "Nguyen", "Okafor", "Mensah", "Kowalczyk", "Fraser-Smith", "Lloyd-Jones",
           "Stewart", "Watson", "Henderson", "Gibson", "Dixon", "Burton", "Hart", "Pearson", "Cole", "Grant", "Wallace"],
    "de": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Schäfer",
           "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger",
           "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Lehmann", "Köhler", "Groß", "Jäger", "Böhm"],
    "fr": ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
           "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Girard", "Bonnet"],
    "pl": ["Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski", "Zieliński", "Szymański",
           "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur", "Krawczyk", "Piotrowski", "Grabowski"],
    "cz": ["Novák", "Svoboda", "Novotný", "Dvořák", "Černý", "Procházka", "Kučera", "Veselý", "Horák", "Němec"],
    "gr": ["Παπαδόπουλος", "Βασιλείου", "Γεωργίου", "Νικολάου", "Παππάς", "Οικονόμου"],
    "it": ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno"],
    "es": ["García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Muñoz", "Jiménez"],
}

# Polish family names change ending with gender.
def gendered(culture: str, family: str, sex: str) -> str:
    if culture == "pl" and sex == "f" and family.endswith("ski"):
        return family[:-1] + "a"
    if culture == "pl" and sex == "f" and family.endswith("cki"):
        return family[:-1] + "a"
    if culture == "cz" and sex == "f":
        if family.endswith("ý"):
            return family[:-1] + "á"
        return family.replace("ek", "k") + "ová" if not family.endswith("á") else family
    return family

CULTURES = [("gb", 0.58), ("de", 0.13), ("fr", 0.08), ("pl", 0.09), ("cz", 0.03), ("gr", 0.02), ("it", 0.04), ("es", 0.03)]
COUNTRY_OF = {"gb": "GB", "de": "DE", "fr": "FR", "pl": "PL", "cz": "CZ", "gr": "GR", "it": "IT", "es": "ES"}
CALLING = {"GB": "44", "DE": "49", "FR": "33", "PL": "48", "CZ": "420", "GR": "30", "IT": "39", "ES": "34", "IE": "353", "NL": "31"}

PROVIDERS = {
    "GB": ["gmail.com", "gmail.com", "hotmail.co.uk", "outlook.com", "yahoo.co.uk", "btinternet.com", "icloud.com", "sky.com"],
    "DE": ["gmail.com", "web.de", "gmx.de", "t-online.de", "gmx.net"],
    "FR": ["gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr"],
    "PL": ["gmail.com", "wp.pl", "o2.pl", "onet.pl", "interia.pl"],
    "CZ": ["gmail.com", "seznam.cz", "email.cz"],
    "GR": ["gmail.com", "yahoo.gr", "otenet.gr"],
    "IT": ["gmail.com", "libero.it", "virgilio.it"],
    "ES": ["gmail.com", "hotmail.es", "yahoo.es"],
}
DOMAIN_TYPOS = {"gmail.com": ["gmial.com", "gmail.co", "gmai.com", "gnail.com"], "hotmail.co.uk": ["hotmial.co.uk", "hotmail.co.k"],
                "outlook.com": ["outlok.com"], "yahoo.co.uk": ["yaho.co.uk"], "web.de": ["wbe.de"], "gmx.de": ["gmx.ed"],
                "orange.fr": ["ornage.fr"], "wp.pl": ["wp.pll"], "icloud.com": ["iclod.com"]}


def ascii_fold(text: str) -> str:
    out = unicodedata.normalize("NFKD", text)
    return "".join(c for c in out if not unicodedata.combining(c)).replace("ł", "l").replace("Ł", "L").replace("ß", "ss")


GREEK_LATIN = {"Γιώργος": "Giorgos", "Δημήτρης": "Dimitris", "Νίκος": "Nikos", "Κώστας": "Kostas", "Μαρία": "Maria",
               "Ελένη": "Eleni", "Κατερίνα": "Katerina", "Σοφία": "Sofia", "Παπαδόπουλος": "Papadopoulos",
               "Βασιλείου": "Vasileiou", "Γεωργίου": "Georgiou", "Νικολάου": "Nikolaou", "Παππάς": "Pappas", "Οικονόμου": "Oikonomou"}
GERMAN_SPELLED = {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}


def latin(text: str) -> str:
    """How the name is typed on a keyboard without its letters: Greek romanised, accents dropped."""
    return ascii_fold(GREEK_LATIN.get(text, text))


def spelled_out(text: str) -> str:
    """German umlauts spelled out (Jürgen → Juergen)."""
    return "".join(GERMAN_SPELLED.get(c, c) for c in text)


@dataclass
class Phone:
    country: str
    national: str  # as dialled inside the country, with its trunk prefix where there is one
    e164: str


@dataclass
class Person:
    pid: int
    culture: str
    country: str  # where they live (their phone's and postcode's country)
    sex: str
    given: str
    nicknames: list[str]
    family: str
    postcode: str | None
    emails: list[tuple[str, int, int]] = field(default_factory=list)  # (email, from_day, to_day)
    phones: list[tuple[Phone, int, int]] = field(default_factory=list)
    cards: list[tuple[str, int, int]] = field(default_factory=list)
    first_day: int = 0
    last_day: int = 0
    tags: set[str] = field(default_factory=set)
    habit: str = "email"  # what they give at the till when asked: card, email or phone
    moved_to: str | None = None  # a new postcode from `moved_on` (people move house)
    moved_on: int = 0


START = dt.datetime(2019, 1, 1)
DAYS = (dt.datetime(2026, 11, 30) - START).days


class Population:
    def __init__(self, people: int, seed: int):
        self.rng = random.Random(seed)
        self.people: list[Person] = []
        self.used_emails: set[str] = set()
        self.used_phones: set[str] = set()
        self.used_cards: set[str] = set()
        self.target = people

    # --- identifiers ------------------------------------------------------------------------

    def mobile(self, country: str) -> Phone:
        r = self.rng
        while True:
            if country == "GB":
                # Ranges libphonenumber holds valid in full (not every 07 number is a mobile).
                national = r.choice(["071", "072", "073", "0780", "0781", "0784", "0785", "0786", "0787"])
                national += "".join(r.choices(string.digits, k=11 - len(national)))
                shown = national[:5] + " " + national[5:]
            elif country == "DE":
                prefix = r.choice(["0151", "0152", "0157", "0160", "0170", "0171", "0172", "0175", "0176"])
                rest = "".join(r.choices(string.digits, k=8 if prefix.startswith("015") or prefix == "0176" else 7))
                national = prefix + rest
                shown = prefix + " " + rest
            elif country == "FR":
                national = r.choice(["061", "062", "064", "065", "066", "067", "068", "075", "076", "077", "078"])
                national += "".join(r.choices(string.digits, k=7))
                shown = " ".join(national[i:i + 2] for i in range(0, 10, 2))
            elif country == "PL":
                national = r.choice(["50", "51", "53", "60", "66", "69", "72", "78", "79", "88"]) + "".join(r.choices(string.digits, k=7))
                shown = national[:3] + " " + national[3:6] + " " + national[6:]
            elif country == "CZ":
                national = r.choice(["601", "602", "603", "604", "605", "606", "607", "608", "720", "730", "770", "790"])
                national += "".join(r.choices(string.digits, k=6))
                shown = national[:3] + " " + national[3:6] + " " + national[6:]
            elif country == "GR":
                national = "69" + r.choice("3457") + "".join(r.choices(string.digits, k=7))
                shown = national[:3] + " " + national[3:]
            elif country == "IT":
                national = "3" + r.choice(["20", "28", "33", "35", "38", "40", "47", "66", "93"]) + "".join(r.choices(string.digits, k=7))
                shown = national[:3] + " " + national[3:]
            else:  # ES
                national = "6" + "".join(r.choices(string.digits, k=8))
                shown = national[:3] + " " + national[3:6] + " " + national[6:]
            digits = national[1:] if national.startswith("0") else national
            e164 = "+" + CALLING[country] + digits
            if e164 not in self.used_phones:
                self.used_phones.add(e164)
                return Phone(country, shown, e164)

    def landline(self) -> Phone:
        r = self.rng
        while True:
            area, length = r.choice([("020 7946", 4), ("0161 496", 4), ("0113 496", 4), ("0117 496", 4), ("0131 496", 4), ("029 2018", 4)])
            shown = area + " " + "".join(r.choices(string.digits, k=length))
            digits = shown.replace(" ", "")
            e164 = "+44" + digits[1:]
            if e164 not in self.used_phones:
                self.used_phones.add(e164)
                return Phone("GB", shown, e164)

    def postcode(self, country: str) -> str:
        r = self.rng
        if country == "GB":
            area = r.choice(["SW1A", "SW9", "SE15", "N1", "N16", "E8", "W12", "NW5", "M1", "M20", "LS6", "BS3", "EH6", "CF10", "B13", "L8"])
            return f"{area} {r.randint(1, 9)}{r.choice('ABDEFGHJLNPQRSTUWXYZ')}{r.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        if country == "PL":
            return f"{r.randint(0, 99):02d}-{r.randint(0, 999):03d}"
        if country in ("DE", "FR", "IT", "ES", "GR"):
            return f"{r.randint(1000, 99999):05d}"
        if country == "CZ":
            return f"{r.randint(100, 799)} {r.randint(0, 99):02d}"
        return ""

    def email(self, given: str, family: str, country: str, shared_name: str | None = None) -> str:
        r = self.rng
        g, f = latin(given).lower().replace(" ", ""), latin(family).lower().replace(" ", "").replace("'", "")
        f = f.replace("-", "")
        while True:
            provider = r.choice(PROVIDERS[country])
            if shared_name:
                local = shared_name
            else:
                local = r.choice([f"{g}.{f}", f"{g}{f}", f"{g[0]}.{f}", f"{g}.{f}{r.randint(1, 99)}", f"{g}{r.randint(70, 99)}",
                                  f"{f}.{g}", f"{g}_{f}", f"{g[0]}{f}{r.randint(1, 999)}"])
            address = f"{local}@{provider}"
            # Gmail ignores dots: john.smith@ and johnsmith@ are one mailbox, so one person's.
            mailbox = local.replace(".", "") + "@gmail.com" if provider == "gmail.com" else address
            if mailbox not in self.used_emails:
                self.used_emails.add(mailbox)
                return address
            shared_name = None

    def card(self) -> str:
        while True:
            number = "9826" + "".join(self.rng.choices(string.digits, k=8))
            if number not in self.used_cards:
                self.used_cards.add(number)
                return number

    # --- people -----------------------------------------------------------------------------

    def culture(self) -> str:
        x, total = self.rng.random(), 0.0
        for name, weight in CULTURES:
            total += weight
            if x < total:
                return name
        return "gb"

    def new_person(self, culture: str | None = None, sex: str | None = None, family: str | None = None,
                   country: str | None = None, postcode: str | None = None, given: tuple[str, list[str]] | None = None) -> Person:
        r = self.rng
        culture = culture or self.culture()
        sex = sex or r.choice("mf")
        name, nicknames = given or r.choice(GIVEN[culture][sex])
        family = family or gendered(culture, r.choice(FAMILY[culture]), sex)
        if country is None:
            # Most people of another culture live here; some are visitors from home.
            country = "GB" if culture == "gb" or r.random() < 0.55 else COUNTRY_OF[culture]
        person = Person(pid=len(self.people), culture=culture, country=country, sex=sex, given=name, nicknames=list(nicknames),
                        family=family, postcode=postcode if postcode is not None else self.postcode(country))
        first = r.randint(0, DAYS - 30)
        span = int(r.expovariate(1 / 900))
        person.first_day, person.last_day = first, min(DAYS, first + span)
        self.people.append(person)
        return person

    def give_identifiers(self, p: Person, email=True, mobile=True, card=True):
        r = self.rng
        if email and r.random() < 0.82:
            address = self.email(p.given, p.family, p.country)
            if r.random() < 0.09 and p.last_day - p.first_day > 200:
                # A changed email: the old address until some day, a new one after.
                switch = r.randint(p.first_day + 60, p.last_day - 60)
                p.emails.append((address, p.first_day, switch))
                p.emails.append((self.email(p.given, p.family, p.country), switch, p.last_day))
                p.tags.add("changed_email")
            else:
                p.emails.append((address, p.first_day, p.last_day))
        if mobile and r.random() < 0.75:
            p.phones.append((self.mobile(p.country), p.first_day, p.last_day))
        if card and r.random() < 0.5:
            number = self.card()
            if r.random() < 0.1 and p.last_day - p.first_day > 200:
                switch = r.randint(p.first_day + 60, p.last_day - 60)
                p.cards.append((number, p.first_day, switch))
                p.cards.append((self.card(), switch, p.last_day))
                p.tags.add("replacement_card")
            else:
                p.cards.append((number, p.first_day, p.last_day))

    def build(self):
        r = self.rng
        while len(self.people) < self.target:
            roll = r.random()
            remaining = self.target - len(self.people)
            if roll < 0.16 and remaining >= 4:
                self.household()
            elif roll < 0.175 and remaining >= 2:
                self.twins()
            elif roll < 0.20 and remaining >= 2:
                self.recycled_number()
            elif roll < 0.22 and remaining >= 3:
                self.same_name_strangers()
            else:
                p = self.new_person()
                self.give_identifiers(p)
        # Every person can be identified at the till by something, and has a habit.
        for p in self.people:
            if not (p.emails or p.phones or p.cards):
                p.phones.append((self.mobile(p.country), p.first_day, p.last_day))
            if "household" not in p.tags and "twin" not in p.tags and p.last_day - p.first_day > 200 and self.rng.random() < 0.06:
                p.moved_to = self.postcode(p.country)
                p.moved_on = self.rng.randint(p.first_day + 60, p.last_day - 60)
            kinds = [k for k, v in (("card", p.cards), ("email", p.emails), ("phone", p.phones)) if v]
            p.habit = "card" if p.cards and self.rng.random() < 0.8 else self.rng.choice(kinds)

    def household(self):
        r = self.rng
        culture = r.choice(["gb"] * 6 + ["de", "pl", "fr"])
        country = "GB"
        family = r.choice(FAMILY[culture])
        postcode = self.postcode(country)
        members = []
        for index in range(r.choice([2, 2, 2, 3, 3, 4])):
            sex = "f" if index == 0 else ("m" if index == 1 else r.choice("mf"))
            own_family = gendered(culture, family, sex) if r.random() < 0.85 else gendered(culture, r.choice(FAMILY[culture]), sex)
            p = self.new_person(culture=culture, sex=sex, family=own_family, country=country, postcode=postcode)
            while any(m.given == p.given for m in members):
                p.given, p.nicknames = r.choice(GIVEN[culture][sex])
            self.give_identifiers(p)
            p.tags.add("household")
            members.append(p)
        start = min(m.first_day for m in members)
        end = max(m.last_day for m in members)
        if r.random() < 0.6:
            landline = self.landline()
            for m in members:
                m.phones.append((landline, start, end))
                m.tags.add("shared_phone")
        if r.random() < 0.3:
            shared = self.email(members[0].family, "family", "GB", shared_name=f"the{latin(family).lower().replace(' ', '').replace('-', '').replace(chr(39), '')}s")
            for m in members[:2]:
                m.emails.append((shared, start, end))
                m.tags.add("shared_email")

    def twins(self):
        r = self.rng
        culture = r.choice(["gb", "gb", "gb", "de", "pl"])
        family = r.choice(FAMILY[culture])
        postcode = self.postcode("GB")
        landline = self.landline() if r.random() < 0.7 else None
        first = None
        for _ in range(2):
            sex = r.choice("mf")
            given = r.choice(GIVEN[culture][sex])
            while first is not None and latin(given[0])[:3].lower() == latin(first.given)[:3].lower():
                given = r.choice(GIVEN[culture][sex])
            p = self.new_person(culture=culture, sex=sex, family=gendered(culture, family, sex), country="GB", postcode=postcode, given=given)
            self.give_identifiers(p)
            if landline:
                p.phones.append((landline, p.first_day, p.last_day))
            p.tags.add("twin")
            first = first or p
        twin_a, twin_b = self.people[-2], self.people[-1]
        # Twins come in together.
        twin_b.first_day, twin_b.last_day = twin_a.first_day, max(twin_a.last_day, twin_b.last_day)

    def recycled_number(self):
        r = self.rng
        before = self.new_person(country="GB")
        self.give_identifiers(before, mobile=False)
        number = self.mobile("GB")
        # The first owner used the number for a while and stopped coming (or changed number).
        before.first_day = r.randint(0, 900)
        before.last_day = before.first_day + r.randint(100, 600)
        before.emails = [(e, before.first_day, before.last_day) for e, _, _ in before.emails[:1]]
        before.cards = [(c, before.first_day, before.last_day) for c, _, _ in before.cards[:1]]
        before.phones = [(number, before.first_day, before.last_day)]
        after = self.new_person(country="GB")
        while latin(after.given)[:3].lower() == latin(before.given)[:3].lower():
            after.given, after.nicknames = r.choice(GIVEN[after.culture][after.sex])
        after.first_day = before.last_day + r.randint(2 * 365 + 30, 3 * 365)
        after.last_day = min(DAYS, after.first_day + r.randint(30, 700))
        if after.first_day >= DAYS - 10:
            after.first_day = DAYS - 20
        self.give_identifiers(after, mobile=False)
        after.phones = [(number, after.first_day, after.last_day)]
        before.tags.add("recycled_number")
        after.tags.add("recycled_number")

    def same_name_strangers(self):
        r = self.rng
        culture, sex, given, family = r.choice([
            ("gb", "m", ("John", ["Johnny", "Jack"]), "Smith"), ("gb", "m", ("David", ["Dave"]), "Jones"),
            ("gb", "f", ("Sarah", []), "Taylor"), ("de", "f", ("Anna", []), "Müller"), ("pl", "m", ("Piotr", []), "Nowak"),
            ("fr", "f", ("Marie", []), "Martin"), ("gb", "f", ("Emily", ["Emmy"]), "Brown"), ("de", "m", ("Thomas", ["Tom"]), "Schmidt"),
        ])
        for _ in range(r.choice([2, 3, 3, 4])):
            p = self.new_person(culture=culture, sex=sex, family=family, given=given)
            self.give_identifiers(p)
            p.tags.add("same_name")

    # --- records ----------------------------------------------------------------------------

    def visits(self, p: Person) -> int:
        # Most people come a few times; regulars come often.
        x = self.rng.random()
        if x < 0.30:
            return 1
        if x < 0.55:
            return self.rng.randint(2, 3)
        if x < 0.85:
            return self.rng.randint(4, 7)
        return self.rng.randint(8, 16)

    def typo(self, word: str) -> str:
        r = self.rng
        if len(word) < 4:
            return word
        i = r.randrange(1, len(word) - 1)
        kind = r.random()
        if kind < 0.4:
            return word[:i] + word[i + 1] + word[i] + word[i + 2:]  # swap
        if kind < 0.7:
            return word[:i] + word[i + 1:]  # drop
        return word[:i] + word[i] + word[i:]  # double

    def name_as_given(self, p: Person) -> tuple[str, str, set[str]]:
        r = self.rng
        tags = set()
        given, family = p.given, p.family
        if p.nicknames and r.random() < 0.3:
            given = r.choice(p.nicknames)
            tags.add("nickname")
        if any(ord(c) > 127 for c in given + family):
            roll = r.random()
            if roll < 0.35:
                given, family = latin(given), latin(family)
                tags.add("accents")
            elif roll < 0.5 and p.culture == "de":
                given, family = spelled_out(given), spelled_out(family)
                tags.add("accents")
        if r.random() < 0.03:
            given = self.typo(given)
            tags.add("name_typo")
        if r.random() < 0.02:
            family = self.typo(family)
            tags.add("name_typo")
        if r.random() < 0.03:
            given = given[0] + "."
            tags.add("initial")
        roll = r.random()
        if roll < 0.1:
            given, family = given.upper(), family.upper()
        elif roll < 0.15:
            given, family = given.lower(), family.lower()
        return given, family, tags

    def email_as_given(self, address: str) -> tuple[str, set[str]]:
        r = self.rng
        local, domain = address.split("@")
        if domain == "gmail.com" and r.random() < 0.08:
            if "." in local and r.random() < 0.5:
                return local.replace(".", "") + "@" + domain, {"gmail_alias"}
            return local + "+" + r.choice(["shop", "till", "news", "x"]) + "@" + domain, {"gmail_alias"}
        if domain in DOMAIN_TYPOS and r.random() < 0.04:
            return local + "@" + r.choice(DOMAIN_TYPOS[domain]), {"email_typo"}
        if len(local) >= 6 and r.random() < 0.02:
            return self.typo(local) + "@" + domain, {"email_typo"}
        if r.random() < 0.1:
            return address.capitalize(), set()
        return address, set()

    def phone_as_given(self, phone: Phone, has_country_hint: bool) -> tuple[str, set[str]]:
        r = self.rng
        tags = set()
        national = phone.national
        if r.random() < 0.02:
            digits = [c for c in national]
            positions = [i for i, c in enumerate(digits) if c.isdigit()][3:]
            i = r.choice(positions)
            digits[i] = r.choice([d for d in string.digits if d != digits[i]])
            national = "".join(digits)
            tags.add("phone_typo")
        if phone.country == "GB":
            roll = r.random()
            if roll < 0.6:
                return national, tags
            if roll < 0.85:
                return "+44 " + national[1:], tags
            return national.replace(" ", "-"), tags
        # A foreign number: in national format only where the rest of the record says where
        # from (the postcode's shape or the email's country); international otherwise.
        if has_country_hint and r.random() < 0.7:
            tags.add("national_phone")
            return national, tags
        digits = national[1:] if national.startswith("0") and phone.country != "IT" else national
        return "+" + CALLING[phone.country] + " " + digits, tags

    def records(self):
        r = self.rng
        rows = []
        for p in self.people:
            count = self.visits(p)
            days = sorted(r.randint(p.first_day, max(p.first_day, p.last_day)) for _ in range(count))
            # The last day of the span is a visit: when someone was last seen is a fact about them.
            if count > 1:
                days[-1] = p.last_day
            for day in days:
                emails = [e for e, a, b in p.emails if a <= day <= b]
                phones = [ph for ph, a, b in p.phones if a <= day <= b]
                cards = [c for c, a, b in p.cards if a <= day <= b]
                tags = set(t for t in p.tags if t in ("household", "twin", "recycled_number", "same_name"))
                row = {"given_name": "", "family_name": "", "email": "", "phone": "", "loyalty_card": "", "postcode": ""}
                # What the till was given this time: mostly the person's habit (the card they
                # carry, the email they always give), now and then something else besides.
                available = {k: v for k, v in (("card", cards), ("email", emails), ("phone", phones)) if v}
                choice = []
                if p.habit in available and r.random() < 0.85:
                    choice.append(p.habit)
                for kind in available:
                    if kind not in choice and r.random() < (0.15 if choice else 0.5):
                        choice.append(kind)
                if not choice:
                    choice.append(r.choice(sorted(available)) if available else "name")
                shared = set()
                if "phone" in choice:
                    # A household member may give the shared landline.
                    phone = r.choice(phones)
                    if sum(1 for q in self.people_by_phone.get(phone.e164, ())) > 1:
                        shared.add("phone")
                if "email" in choice:
                    email = r.choice(emails)
                    if len(self.people_by_email.get(email, ())) > 1:
                        shared.add("email")
                # A name: usually given, always when what is given is shared (a household
                # member names themselves when giving the family's number).
                name_given = r.random() < 0.65 or bool(shared) or choice == ["name"]
                if name_given:
                    row["given_name"], row["family_name"], name_tags = self.name_as_given(p)
                    tags |= name_tags
                    if r.random() < 0.01:
                        row["given_name"], row["family_name"] = row["family_name"], row["given_name"]
                        tags.add("swapped_names")
                postcode = p.moved_to if p.moved_to and day >= p.moved_on else p.postcode
                if postcode and (r.random() < 0.35 or choice == ["name"]):
                    row["postcode"] = postcode if r.random() < 0.7 else postcode.lower().replace(" ", "")
                    if postcode == p.moved_to:
                        tags.add("moved")
                if "card" in choice:
                    card = r.choice(cards)
                    row["loyalty_card"] = card
                    if len(p.cards) > 1 and card != p.cards[0][0]:
                        tags.add("replacement_card")
                if "email" in choice:
                    row["email"], email_tags = self.email_as_given(email)
                    tags |= email_tags
                    if len(p.emails) > 1:
                        tags.add("changed_email")
                    if "email" in shared:
                        tags.add("shared_email")
                if "phone" in choice:
                    # Of these countries' postcodes only Poland's shape (99-999) is its own.
                    hint = bool(row["postcode"]) and p.country == "PL" or (
                        bool(row["email"]) and row["email"].rsplit(".", 1)[-1].lower() == p.country.lower())
                    if p.country != "GB" and not hint and r.random() < 0.5:
                        # The visitor's email says where they are from.
                        own = [e for e in emails if e.rsplit(".", 1)[-1] == p.country.lower()]
                        if own:
                            row["email"] = own[0]
                            hint = True
                    row["phone"], phone_tags = self.phone_as_given(phone, hint)
                    tags |= phone_tags
                    if "phone" in shared:
                        tags.add("shared_phone")
                if choice == ["name"] and not row["postcode"]:
                    continue
                when = START + dt.timedelta(days=day, seconds=r.randint(8 * 3600, 19 * 3600))
                row["captured_at"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
                rows.append((p, row, tags))
        return rows

    def index(self):
        self.people_by_phone: dict[str, set[int]] = {}
        self.people_by_email: dict[str, set[int]] = {}
        for p in self.people:
            for phone, _, _ in p.phones:
                self.people_by_phone.setdefault(phone.e164, set()).add(p.pid)
            for email, _, _ in p.emails:
                self.people_by_email.setdefault(email, set()).add(p.pid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="records.csv")
    parser.add_argument("--truth", default="truth.csv")
    args = parser.parse_args()

    population = Population(args.people, args.seed)
    population.build()
    population.index()
    rows = population.records()
    # Record ids in a shuffled order: nothing about a person can be read from the id.
    population.rng.shuffle(rows)
    columns = ["record_id", "captured_at", "given_name", "family_name", "email", "phone", "loyalty_card", "postcode"]
    with open(args.out, "w", newline="", encoding="utf-8") as out, open(args.truth, "w", newline="", encoding="utf-8") as truth:
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        truth_writer = csv.writer(truth, lineterminator="\n")
        truth_writer.writerow(["record_id", "person", "cases"])
        for number, (person, row, tags) in enumerate(rows, start=1):
            record = f"R{number:06d}"
            writer.writerow({"record_id": record, **row})
            truth_writer.writerow([record, f"P{person.pid:05d}", " ".join(sorted(tags))])
    multi = sum(1 for p in population.people if p.tags)
    print(f"{len(rows)} records of {len(population.people)} people ({multi} in a hard case) -> {args.out}, truth -> {args.truth}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
