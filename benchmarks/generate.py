"""Seeded generator of realistic ERP customer exports (CSV) for the erp-sync benchmark.

    python -m benchmarks.generate OUT.csv --customers 1000000 --seed 42
    python -m benchmarks.generate OUT.csv --customers 1000000 --seed 42 \\
        --variant-of-seed 42 --changed 0.10 --new 0.05

One row per customer-contact pair (CONTRACT.md section 1), about 2.2 rows per customer: European
company names, addresses, postal codes and phone numbers (DE, AT, CH, FR, BE, IT, ES, NL, PL, SE,
DK, NO, FI), ERP numbers with leading zeros, currency and language codes in case variants, notes
with commas, quotes and newlines, contact emails in case variants (the same contact twice now and
then), and about 2% invalid rows (bad currency, language, email, boolean; blank name; contact
without email).

Everything is generated column-wise with a seeded numpy Generator and polars expressions; no
per-row Python loop. The same arguments give the same bytes.

A variant (`--variant-of-seed S`) is the base file of seed S with `--changed` of its customers
changed (name, billing city, notes or contact phones), every other row as in the base file, and
`--new` x customers new customers, with numbers above the base file's, appended at the end.
`--seed` then picks which customers change and how.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

# Each country: code, share of customers, local country name, top-level domain, phone country
# code, main currency and its share (the rest is EUR), language tags (repeated = more likely),
# first names, last names, streets, street style, cities (name, first postal code, spread),
# postal code format, legal forms, industry words, whether the industry word comes first,
# generic mailbox names.

_DE_FIRST = [
    "Anna",
    "Lena",
    "Lea",
    "Marie",
    "Sophie",
    "Julia",
    "Katharina",
    "Sabine",
    "Ute",
    "Jürgen",
    "Günther",
    "Jörg",
    "Björn",
    "Maximilian",
    "Lukas",
    "Jonas",
    "Felix",
    "Thomas",
    "Michael",
    "Andreas",
    "Stefan",
    "Klaus",
    "Petra",
    "Monika",
    "Sören",
    "Käthe",
    "Hans",
    "Uwe",
    "Ralf",
    "Birgit",
    "Dörte",
    "Matthias",
    "Tobias",
    "Sebastian",
    "Christine",
    "Heike",
    "Jens",
    "Anja",
]
_DE_LAST = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Schmitt",
    "Werner",
    "Krause",
    "Meier",
    "Lehmann",
    "Köhler",
    "Jäger",
    "Groß",
    "Weiß",
    "Böhm",
    "Vogel",
    "Fuchs",
    "Maurer",
    "Gruber",
    "Huber",
    "Pichler",
    "Steiner",
    "Dreßler",
    "Wößner",
]
_DE_STREETS = [
    "Hauptstraße",
    "Bahnhofstraße",
    "Schulstraße",
    "Gartenstraße",
    "Dorfstraße",
    "Bergstraße",
    "Lindenstraße",
    "Kirchstraße",
    "Waldstraße",
    "Ringstraße",
    "Goethestraße",
    "Schillerstraße",
    "Mühlenweg",
    "Am Marktplatz",
    "Friedrichstraße",
    "Industriestraße",
    "Königsallee",
    "Münchener Straße",
    "Kölner Straße",
    "Im Gewerbepark",
    "Rosenweg",
    "Lärchenweg",
    "Grüner Weg",
    "Wiesenstraße",
    "Hafenstraße",
    "Kaiserstraße",
    "Birkenweg",
    "Ahornweg",
    "Feldstraße",
    "Mozartstraße",
    "Straße des 17. Juni",
    "Karl-Marx-Allee",
]
_DE_INDUSTRY = [
    "Logistik",
    "Maschinenbau",
    "Handel",
    "Bau",
    "Elektrotechnik",
    "Metallbau",
    "Druckerei",
    "Spedition",
    "Holzbau",
    "Feinmechanik",
    "Gebäudetechnik",
    "Lebensmittel",
    "Getränke",
    "Umwelttechnik",
    "Software",
    "Möbelwerk",
    "Kältetechnik",
    "Stahlhandel",
]

_FR_FIRST = [
    "Jean",
    "Pierre",
    "Michel",
    "François",
    "Jérôme",
    "Stéphane",
    "Amélie",
    "Hélène",
    "Céline",
    "Chloé",
    "Léa",
    "Camille",
    "Émilie",
    "Noël",
    "Gaël",
    "Thérèse",
    "Marie",
    "Louis",
    "Nicolas",
    "Sébastien",
    "Anaïs",
    "Zoé",
    "Benoît",
    "Hervé",
    "Geneviève",
    "Cécile",
    "Raphaël",
    "Maëlle",
    "Jean-Luc",
    "Anne-Sophie",
]
_FR_LAST = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèbvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Lefèvre",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Lemaître",
    "Gauthier",
    "Chevalier",
    "Lebœuf",
    "Besançon",
    "Nöel",
]
_FR_STREETS = [
    "rue de la République",
    "rue Victor Hugo",
    "avenue des Champs-Élysées",
    "boulevard Saint-Germain",
    "rue du Faubourg Saint-Honoré",
    "rue de la Paix",
    "place de l'Église",
    "chemin des Vignes",
    "allée des Tilleuls",
    "rue Jean Jaurès",
    "avenue Foch",
    "rue Pasteur",
    "rue de Verdun",
    "rue Nationale",
    "quai de la Loire",
    "impasse des Lilas",
    "rue Émile Zola",
    "avenue du Général Leclerc",
    "rue des Écoles",
    "route de Lyon",
    "rue du Général de Gaulle",
    "zone industrielle des Forêts",
]
_FR_INDUSTRY = [
    "Transports",
    "Boulangerie",
    "Imprimerie",
    "Menuiserie",
    "Électricité",
    "Bâtiment",
    "Constructions",
    "Distribution",
    "Logistique",
    "Agencement",
    "Métallerie",
    "Vins et Spiritueux",
    "Fromagerie",
    "Chaudronnerie",
]

_IT_FIRST = [
    "Giuseppe",
    "Giovanni",
    "Francesco",
    "Antonio",
    "Marco",
    "Luca",
    "Alessandro",
    "Andrea",
    "Matteo",
    "Lorenzo",
    "Niccolò",
    "Giulia",
    "Francesca",
    "Chiara",
    "Sara",
    "Martina",
    "Elena",
    "Alessia",
    "Federica",
    "Valentina",
    "Paola",
    "Lucia",
    "Rosa",
    "Ilaria",
    "Nicolò",
    "Mattia",
]
_IT_LAST = [
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Colombo",
    "Ricci",
    "Marino",
    "Greco",
    "Bruno",
    "Gallo",
    "Conti",
    "De Luca",
    "Mancini",
    "Costa",
    "Giordano",
    "Rizzo",
    "Lombardi",
    "Moretti",
    "Barbieri",
    "Fontana",
    "Santoro",
    "Mariani",
    "Rinaldi",
    "Caruso",
    "D'Angelo",
    "De Santis",
    "Parisi",
    "Cantù",
    "Forlì",
    "Niccolò",
    "Fabbri",
    "Galli",
]
_IT_STREETS = [
    "Via Roma",
    "Via Garibaldi",
    "Corso Vittorio Emanuele II",
    "Via Giuseppe Verdi",
    "Piazza del Duomo",
    "Via Dante Alighieri",
    "Viale della Libertà",
    "Via Cavour",
    "Via Mazzini",
    "Corso Italia",
    "Via dell'Industria",
    "Via San Francesco d'Assisi",
    "Via XX Settembre",
    "Viale Europa",
    "Via Nazionale",
    "Via dei Mille",
    "Largo Augusto",
]
_IT_INDUSTRY = [
    "Costruzioni",
    "Trasporti",
    "Impianti",
    "Meccanica",
    "Tessile",
    "Alimentari",
    "Arredamenti",
    "Edilizia",
    "Ceramiche",
    "Forniture",
    "Officine",
    "Caseificio",
]

_ES_FIRST = [
    "José",
    "María",
    "Antonio",
    "Manuel",
    "Francisco",
    "Javier",
    "Jesús",
    "Carmen",
    "Lucía",
    "Sofía",
    "Martina",
    "Ana",
    "Isabel",
    "Pilar",
    "Raúl",
    "Sergio",
    "Álvaro",
    "Andrés",
    "Rocío",
    "Inés",
    "Begoña",
    "Íñigo",
    "Nuria",
    "Ramón",
    "María José",
    "Jordi",
    "Montserrat",
]
_ES_LAST = [
    "García",
    "Rodríguez",
    "González",
    "Fernández",
    "López",
    "Martínez",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Martín",
    "Jiménez",
    "Ruiz",
    "Hernández",
    "Díaz",
    "Moreno",
    "Muñoz",
    "Álvarez",
    "Romero",
    "Alonso",
    "Gutiérrez",
    "Navarro",
    "Torres",
    "Domínguez",
    "Vázquez",
    "Ramos",
    "Gil",
    "Ramírez",
    "Serrano",
    "Blanco",
    "Molina",
    "Ibáñez",
    "Núñez",
    "Peña",
    "Puig",
    "Ferrer",
]
_ES_STREETS = [
    "Calle Mayor",
    "Calle de Alcalá",
    "Gran Vía",
    "Avenida de la Constitución",
    "Paseo de la Castellana",
    "Calle Real",
    "Plaza de España",
    "Calle San Vicente",
    "Avinguda Diagonal",
    "Carrer de Mallorca",
    "Calle Nueva",
    "Calle del Sol",
    "Calle Colón",
    "Rambla de Catalunya",
    "Avenida de Andalucía",
    "Polígono Industrial El Olivar",
]
_ES_INDUSTRY = [
    "Construcciones",
    "Transportes",
    "Distribuciones",
    "Suministros",
    "Instalaciones",
    "Maderas",
    "Talleres",
    "Comercial",
    "Bodegas",
    "Logística",
    "Conservas",
    "Cerámicas",
]

_NL_FIRST = [
    "Jan",
    "Pieter",
    "Kees",
    "Joost",
    "Daan",
    "Bram",
    "Sanne",
    "Femke",
    "Anouk",
    "Lotte",
    "Maarten",
    "Sven",
    "Willem",
    "Eline",
    "Noor",
    "Thijs",
    "Ruud",
    "Marieke",
    "Gerrit",
    "Ingrid",
    "Sjoerd",
    "Fleur",
    "Loïs",
    "Chloë",
]
_NL_LAST = [
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "de Graaf",
    "van der Meer",
    "van der Linden",
    "Kok",
    "de Haan",
    "Vermeulen",
    "van den Heuvel",
    "IJzerman",
    "Coöperatie",
]
_NL_STREETS = [
    "Kerkstraat",
    "Hoofdstraat",
    "Dorpsstraat",
    "Molenweg",
    "Stationsweg",
    "Schoolstraat",
    "Julianastraat",
    "Wilhelminastraat",
    "Prinsengracht",
    "Keizersgracht",
    "Herengracht",
    "Damrak",
    "Nieuwe Binnenweg",
    "Oudegracht",
    "Markt",
    "Industrieweg",
    "Coolsingel",
]
_NL_INDUSTRY = [
    "Bouw",
    "Transport",
    "Installatietechniek",
    "Handelsonderneming",
    "Logistiek",
    "Techniek",
    "Metaalbewerking",
    "Groothandel",
    "Kwekerij",
    "Zuivel",
]

_BE_FIRST = _NL_FIRST[:14] + _FR_FIRST[:14]
_BE_LAST = [
    "Peeters",
    "Janssens",
    "Maes",
    "Jacobs",
    "Mertens",
    "Willems",
    "Claes",
    "Goossens",
    "Wouters",
    "De Smet",
    "Dubois",
    "Lambert",
    "Dupont",
    "Martin",
    "Van den Broeck",
    "Vermeulen",
    "Lemaître",
    "Desmet",
    "Van Damme",
    "Verstraeten",
]
_BE_STREETS = [
    "Rue Royale",
    "Kerkstraat",
    "Meir",
    "Avenue Louise",
    "Chaussée de Waterloo",
    "Nieuwstraat",
    "Grote Markt",
    "Rue Neuve",
    "Boulevard Anspach",
    "Stationsstraat",
    "Rue de la Loi",
    "Veldstraat",
]

_CH_FIRST = _DE_FIRST[:20] + _FR_FIRST[:8] + _IT_FIRST[:6] + ["Urs", "Reto", "Beat", "Regula"]
_CH_LAST = [
    "Müller",
    "Meier",
    "Schmid",
    "Keller",
    "Weber",
    "Huber",
    "Schneider",
    "Meyer",
    "Steiner",
    "Fischer",
    "Gerber",
    "Brunner",
    "Baumann",
    "Frei",
    "Zimmermann",
    "Moser",
    "Widmer",
    "Wyss",
    "Graf",
    "Roth",
    "Favre",
    "Rochat",
    "Bonvin",
    "Rossi",
    "Bernasconi",
    "Zürcher",
    "Bürki",
]
_CH_STREETS = [
    "Bahnhofstrasse",
    "Hauptstrasse",
    "Dorfstrasse",
    "Seestrasse",
    "Kirchweg",
    "Rue du Rhône",
    "Rue de Lausanne",
    "Avenue de la Gare",
    "Via Nassa",
    "Industriestrasse",
    "Gewerbestrasse",
    "Zürcherstrasse",
    "Bernstrasse",
    "Limmatquai",
    "Löwenstrasse",
]
_CH_INDUSTRY = ["Treuhand", "Uhren", "Käserei", "Maschinenbau", "Logistik", "Holzbau", "Elektro"]

_AT_STREETS = [
    *_DE_STREETS[:20],
    "Mariahilfer Straße",
    "Landstraßer Hauptstraße",
    "Wiener Straße",
    "Grazer Straße",
    "Salzburger Straße",
    "Ringstraße",
]

_PL_FIRST = [
    "Piotr",
    "Krzysztof",
    "Andrzej",
    "Tomasz",
    "Paweł",
    "Michał",
    "Łukasz",
    "Grzegorz",
    "Wojciech",
    "Małgorzata",
    "Agnieszka",
    "Katarzyna",
    "Anna",
    "Joanna",
    "Magdalena",
    "Zofia",
    "Żaneta",
    "Bożena",
    "Jarosław",
    "Stanisław",
    "Jędrzej",
    "Łucja",
    "Kamil",
    "Ewa",
]
_PL_LAST = [
    "Nowak",
    "Kowalski",
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
    "Szymański",
    "Woźniak",
    "Dąbrowski",
    "Kozłowski",
    "Jankowski",
    "Mazur",
    "Wojciechowski",
    "Kwiatkowski",
    "Krawczyk",
    "Kaczmarek",
    "Piotrowski",
    "Grabowski",
    "Zając",
    "Pawłowski",
    "Michalski",
    "Król",
    "Wieczorek",
    "Jabłoński",
    "Wróbel",
    "Stępień",
    "Bąk",
    "Sołtysiak",
]
_PL_STREETS = [
    "ul. Marszałkowska",
    "ul. Długa",
    "ul. Piotrkowska",
    "ul. Mickiewicza",
    "ul. Kościuszki",
    "ul. Słowackiego",
    "ul. Sienkiewicza",
    "al. Jerozolimskie",
    "ul. Żeromskiego",
    "ul. Wojska Polskiego",
    "ul. Krakowska",
    "ul. Świętokrzyska",
    "ul. Chopina",
    "ul. Polna",
    "ul. Łąkowa",
    "ul. 3 Maja",
]
_PL_INDUSTRY = [
    "Budownictwo",
    "Transport",
    "Handel",
    "Usługi",
    "Meble",
    "Instalacje",
    "Logistyka",
    "Przetwórstwo",
    "Przedsiębiorstwo Handlowe",
    "Zakład Mechaniczny",
]

_SE_FIRST = [
    "Anders",
    "Lars",
    "Björn",
    "Mikael",
    "Johan",
    "Erik",
    "Per",
    "Karl",
    "Åsa",
    "Annika",
    "Birgitta",
    "Elin",
    "Ingrid",
    "Karin",
    "Linnéa",
    "Maja",
    "Sofia",
    "Märta",
    "Göran",
    "Örjan",
    "Håkan",
    "Åke",
]
_SE_LAST = [
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Svensson",
    "Gustafsson",
    "Pettersson",
    "Jönsson",
    "Lindberg",
    "Lindström",
    "Lindqvist",
    "Bergström",
    "Sjöberg",
    "Engström",
    "Håkansson",
    "Löfgren",
    "Söderberg",
    "Nyström",
    "Mårtensson",
    "Åberg",
    "Öberg",
    "Ekström",
    "Strömberg",
    "Åkesson",
]
_SE_STREETS = [
    "Storgatan",
    "Drottninggatan",
    "Kungsgatan",
    "Västra Hamngatan",
    "Sveavägen",
    "Götgatan",
    "Industrivägen",
    "Skolgatan",
    "Järnvägsgatan",
    "Kyrkogatan",
    "Norra Vallgatan",
    "Östra Långgatan",
    "Åvägen",
    "Ringvägen",
    "Strandvägen",
]
_SE_INDUSTRY = ["Bygg", "Transport", "Verkstad", "El", "Trä", "Maskin", "Logistik", "Handel"]

_DK_FIRST = [
    "Søren",
    "Jens",
    "Mads",
    "Rasmus",
    "Anders",
    "Frederik",
    "Mette",
    "Kirsten",
    "Hanne",
    "Sofie",
    "Line",
    "Ida",
    "Bjørn",
    "Jørgen",
    "Morten",
    "Freja",
    "Astrid",
    "Signe",
    "Bodil",
]
_DK_LAST = [
    "Nielsen",
    "Jensen",
    "Hansen",
    "Pedersen",
    "Andersen",
    "Christensen",
    "Larsen",
    "Sørensen",
    "Rasmussen",
    "Jørgensen",
    "Petersen",
    "Madsen",
    "Kristensen",
    "Olsen",
    "Thomsen",
    "Poulsen",
    "Møller",
    "Mortensen",
    "Knudsen",
    "Østergaard",
    "Damgaard",
    "Kjær",
    "Nørgaard",
    "Bækgaard",
]
_DK_STREETS = [
    "Vestergade",
    "Østergade",
    "Nørregade",
    "Søndergade",
    "Strøget",
    "Bredgade",
    "Jernbanegade",
    "Algade",
    "Kongensgade",
    "Havnegade",
    "Industrivej",
    "Skovvej",
    "Åboulevarden",
    "Nyhavn",
    "Rådhuspladsen",
]
_DK_INDUSTRY = ["Byg", "Transport", "VVS", "El-service", "Maskinfabrik", "Tømrer", "Smedje"]

_NO_FIRST = [
    "Ola",
    "Kari",
    "Ingrid",
    "Håkon",
    "Bjørn",
    "Øyvind",
    "Lars",
    "Magnus",
    "Sigrid",
    "Solveig",
    "Åse",
    "Torbjørn",
    "Eirik",
    "Nora",
    "Ragnhild",
    "Kjetil",
    "Ståle",
]
_NO_LAST = [
    "Hansen",
    "Johansen",
    "Olsen",
    "Larsen",
    "Andersen",
    "Pedersen",
    "Nilsen",
    "Kristiansen",
    "Berg",
    "Haugen",
    "Hagen",
    "Halvorsen",
    "Sæther",
    "Nygård",
    "Ødegård",
    "Næss",
    "Strøm",
    "Rønning",
    "Bøe",
    "Solheim",
    "Lunde",
    "Myklebust",
]
_NO_STREETS = [
    "Karl Johans gate",
    "Storgata",
    "Kirkegata",
    "Bryggen",
    "Dronningens gate",
    "Kongens gate",
    "Strandgata",
    "Industriveien",
    "Skolegata",
    "Torggata",
    "Øvre Slottsgate",
    "Bogstadveien",
    "Fjordveien",
    "Sjøgata",
    "Haakon VIIs gate",
]
_NO_INDUSTRY = ["Bygg", "Transport", "Elektro", "Maskin", "Rør", "Entreprenør", "Fisk"]

_FI_FIRST = [
    "Mikko",
    "Juha",
    "Jukka",
    "Matti",
    "Antti",
    "Väinö",
    "Ilkka",
    "Pekka",
    "Aino",
    "Anna-Liisa",
    "Sanna",
    "Päivi",
    "Riikka",
    "Tiina",
    "Satu",
    "Jaana",
    "Eeva",
    "Hanna",
    "Jyrki",
]
_FI_LAST = [
    "Korhonen",
    "Virtanen",
    "Mäkinen",
    "Nieminen",
    "Mäkelä",
    "Hämäläinen",
    "Laine",
    "Heikkinen",
    "Koskinen",
    "Järvinen",
    "Lehtonen",
    "Lehtinen",
    "Saarinen",
    "Salminen",
    "Heinonen",
    "Niemi",
    "Heikkilä",
    "Kinnunen",
    "Salonen",
    "Turunen",
    "Rantanen",
    "Karjalainen",
    "Jokinen",
    "Mattila",
    "Savolainen",
    "Lahtinen",
    "Ahonen",
]
_FI_STREETS = [
    "Mannerheimintie",
    "Aleksanterinkatu",
    "Hämeenkatu",
    "Esplanadi",
    "Kauppakatu",
    "Kirkkokatu",
    "Asemakatu",
    "Teollisuustie",
    "Rantatie",
    "Koulukatu",
    "Puistokatu",
    "Keskuskatu",
    "Yliopistonkatu",
    "Itäinen Pitkäkatu",
    "Läntinen Rantakatu",
]
_FI_INDUSTRY = ["Rakennus", "Kuljetus", "Sähkö", "Kone", "Metalli", "Puu", "Elintarvike"]

COUNTRIES: list[dict] = [
    dict(
        code="DE",
        share=0.26,
        local="Deutschland",
        tld="de",
        phone="49",
        currency="EUR",
        main_share=1.0,
        languages=["de-DE"] * 8 + ["de_DE", "de", "de-de"],
        first=_DE_FIRST,
        last=_DE_LAST,
        streets=_DE_STREETS,
        street_style="after",
        cities=[
            ("Berlin", 10115, 4000),
            ("Hamburg", 20095, 2500),
            ("München", 80331, 1700),
            ("Köln", 50667, 700),
            ("Frankfurt am Main", 60311, 300),
            ("Stuttgart", 70173, 450),
            ("Düsseldorf", 40210, 420),
            ("Leipzig", 4103, 250),
            ("Dortmund", 44135, 250),
            ("Essen", 45127, 230),
            ("Bremen", 28195, 600),
            ("Dresden", 1067, 260),
            ("Hannover", 30159, 500),
            ("Nürnberg", 90402, 90),
            ("Münster", 48143, 30),
            ("Würzburg", 97070, 20),
            ("Mönchengladbach", 41061, 180),
            ("Lübeck", 23552, 20),
            ("Göttingen", 37073, 10),
            ("Saarbrücken", 66111, 30),
            ("Regensburg", 93047, 10),
            ("Freiburg im Breisgau", 79098, 20),
            ("Halle (Saale)", 6108, 30),
        ],
        postal="d5",
        legal=["GmbH"] * 6
        + ["GmbH & Co. KG"] * 2
        + ["AG", "KG", "e.K.", "OHG", "UG (haftungsbeschränkt)"],
        industry=_DE_INDUSTRY,
        industry_first=False,
        mailboxes=["info", "info", "kontakt", "buchhaltung", "rechnung", "einkauf", "office"],
    ),
    dict(
        code="AT",
        share=0.04,
        local="Österreich",
        tld="at",
        phone="43",
        currency="EUR",
        main_share=1.0,
        languages=["de-AT"] * 5 + ["de_at", "de-DE", "de"],
        first=_DE_FIRST,
        last=_DE_LAST,
        streets=_AT_STREETS,
        street_style="after",
        cities=[
            ("Wien", 1010, 230),
            ("Graz", 8010, 60),
            ("Linz", 4020, 40),
            ("Salzburg", 5020, 80),
            ("Innsbruck", 6020, 60),
            ("Klagenfurt am Wörthersee", 9020, 60),
            ("St. Pölten", 3100, 10),
            ("Wörgl", 6300, 1),
            ("Mödling", 2340, 1),
        ],
        postal="d4",
        legal=["GmbH"] * 5 + ["AG", "KG", "e.U.", "GmbH & Co KG"],
        industry=_DE_INDUSTRY,
        industry_first=False,
        mailboxes=["office", "office", "info", "buchhaltung", "rechnung"],
    ),
    dict(
        code="CH",
        share=0.04,
        local="Schweiz",
        tld="ch",
        phone="41",
        currency="CHF",
        main_share=0.8,
        languages=["de-CH"] * 4 + ["de_ch", "de_CH", "fr-CH", "fr-CH", "it-CH", "gsw-CH"],
        first=_CH_FIRST,
        last=_CH_LAST,
        streets=_CH_STREETS,
        street_style="after",
        cities=[
            ("Zürich", 8001, 60),
            ("Genève", 1201, 20),
            ("Basel", 4001, 60),
            ("Bern", 3001, 30),
            ("Lausanne", 1003, 20),
            ("Luzern", 6003, 14),
            ("St. Gallen", 9000, 16),
            ("Lugano", 6900, 10),
            ("Winterthur", 8400, 11),
            ("Biel/Bienne", 2502, 5),
            ("Neuchâtel", 2000, 8),
        ],
        postal="d4",
        legal=["AG"] * 4 + ["GmbH"] * 3 + ["SA", "Sàrl", "Genossenschaft"],
        industry=_CH_INDUSTRY,
        industry_first=False,
        mailboxes=["info", "info", "kontakt", "buchhaltung", "admin"],
    ),
    dict(
        code="FR",
        share=0.14,
        local="France",
        tld="fr",
        phone="33",
        currency="EUR",
        main_share=1.0,
        languages=["fr-FR"] * 6 + ["fr", "fr_FR", "fr-fr"],
        first=_FR_FIRST,
        last=_FR_LAST,
        streets=_FR_STREETS,
        street_style="before",
        cities=[
            ("Paris", 75001, 20),
            ("Lyon", 69001, 9),
            ("Marseille", 13001, 16),
            ("Toulouse", 31000, 300),
            ("Nice", 6000, 300),
            ("Nantes", 44000, 300),
            ("Strasbourg", 67000, 200),
            ("Montpellier", 34000, 100),
            ("Bordeaux", 33000, 300),
            ("Lille", 59000, 800),
            ("Rennes", 35000, 700),
            ("Reims", 51100, 10),
            ("Le Havre", 76600, 20),
            ("Saint-Étienne", 42000, 100),
            ("Aix-en-Provence", 13090, 10),
            ("Besançon", 25000, 40),
            ("Orléans", 45000, 100),
            ("Sèvres", 92310, 1),
        ],
        postal="d5",
        legal=["SARL"] * 4 + ["SAS"] * 3 + ["SA", "EURL", "SNC"],
        industry=_FR_INDUSTRY,
        industry_first=True,
        mailboxes=["contact", "contact", "info", "comptabilite", "facturation", "accueil"],
    ),
    dict(
        code="BE",
        share=0.03,
        local="Belgique",
        tld="be",
        phone="32",
        currency="EUR",
        main_share=1.0,
        languages=["nl-BE"] * 3 + ["fr-BE"] * 3 + ["nl_be", "fr_be", "de-BE"],
        first=_BE_FIRST,
        last=_BE_LAST,
        streets=_BE_STREETS,
        street_style="after",
        cities=[
            ("Bruxelles", 1000, 210),
            ("Antwerpen", 2000, 60),
            ("Gent", 9000, 50),
            ("Liège", 4000, 50),
            ("Brugge", 8000, 20),
            ("Namur", 5000, 10),
            ("Leuven", 3000, 12),
            ("Charleroi", 6000, 60),
        ],
        postal="d4",
        legal=["BV", "NV", "SA", "SRL", "BVBA", "SPRL", "CommV"],
        industry=_NL_INDUSTRY[:5] + _FR_INDUSTRY[:5],
        industry_first=False,
        mailboxes=["info", "info", "contact", "boekhouding", "comptabilite"],
    ),
    dict(
        code="IT",
        share=0.12,
        local="Italia",
        tld="it",
        phone="39",
        currency="EUR",
        main_share=1.0,
        languages=["it-IT"] * 4 + ["it"] * 4 + ["it_IT", "it-it", "IT-it"],
        first=_IT_FIRST,
        last=_IT_LAST,
        streets=_IT_STREETS,
        street_style="comma",
        cities=[
            ("Roma", 118, 100),
            ("Milano", 20121, 40),
            ("Napoli", 80121, 40),
            ("Torino", 10121, 30),
            ("Palermo", 90121, 30),
            ("Genova", 16121, 40),
            ("Bologna", 40121, 20),
            ("Firenze", 50121, 30),
            ("Bari", 70121, 10),
            ("Catania", 95121, 10),
            ("Venezia", 30121, 50),
            ("Verona", 37121, 20),
            ("Forlì", 47121, 10),
            ("Cantù", 22063, 1),
            ("Sant'Agata Bolognese", 40019, 1),
        ],
        postal="d5",
        legal=["S.r.l."] * 5 + ["S.p.A."] * 2 + ["S.n.c.", "S.a.s.", "S.r.l.s."],
        industry=_IT_INDUSTRY,
        industry_first=True,
        mailboxes=["info", "info", "amministrazione", "contabilita", "ordini", "segreteria"],
    ),
    dict(
        code="ES",
        share=0.10,
        local="España",
        tld="es",
        phone="34",
        currency="EUR",
        main_share=1.0,
        languages=["es-ES"] * 6 + ["es", "es_ES", "ca-ES", "eu-ES", "gl"],
        first=_ES_FIRST,
        last=_ES_LAST,
        streets=_ES_STREETS,
        street_style="es",
        cities=[
            ("Madrid", 28001, 50),
            ("Barcelona", 8001, 40),
            ("Valencia", 46001, 25),
            ("Sevilla", 41001, 20),
            ("Zaragoza", 50001, 20),
            ("Málaga", 29001, 20),
            ("Murcia", 30001, 12),
            ("Palma", 7001, 15),
            ("Bilbao", 48001, 15),
            ("Alicante", 3001, 16),
            ("Córdoba", 14001, 14),
            ("Valladolid", 47001, 17),
            ("A Coruña", 15001, 10),
            ("Cádiz", 11001, 10),
            ("León", 24001, 10),
            ("L'Hospitalet de Llobregat", 8901, 8),
        ],
        postal="d5",
        legal=["S.L."] * 5 + ["S.A."] * 2 + ["S.L.U.", "S.Coop."],
        industry=_ES_INDUSTRY,
        industry_first=True,
        mailboxes=["info", "info", "administracion", "contabilidad", "pedidos"],
    ),
    dict(
        code="NL",
        share=0.07,
        local="Nederland",
        tld="nl",
        phone="31",
        currency="EUR",
        main_share=1.0,
        languages=["nl-NL"] * 6 + ["nl", "nl_NL", "NL-nl"],
        first=_NL_FIRST,
        last=_NL_LAST,
        streets=_NL_STREETS,
        street_style="after",
        cities=[
            ("Amsterdam", 1011, 100),
            ("Rotterdam", 3011, 80),
            ("Den Haag", 2491, 100),
            ("Utrecht", 3511, 70),
            ("Eindhoven", 5611, 60),
            ("Groningen", 9711, 40),
            ("Tilburg", 5011, 40),
            ("Almere", 1311, 50),
            ("Breda", 4811, 30),
            ("Nijmegen", 6511, 30),
            ("'s-Hertogenbosch", 5211, 30),
            ("Zoetermeer", 2711, 20),
        ],
        postal="nl",
        legal=["B.V."] * 6 + ["N.V.", "V.O.F.", "C.V.", "Coöperatie U.A."],
        industry=_NL_INDUSTRY,
        industry_first=False,
        mailboxes=["info", "info", "administratie", "facturen", "inkoop"],
    ),
    dict(
        code="PL",
        share=0.08,
        local="Polska",
        tld="pl",
        phone="48",
        currency="PLN",
        main_share=0.7,
        languages=["pl"] * 4 + ["pl-PL"] * 4 + ["pl_PL", "PL"],
        first=_PL_FIRST,
        last=_PL_LAST,
        streets=_PL_STREETS,
        street_style="pl",
        cities=[
            ("Warszawa", 1, 4000),
            ("Kraków", 30001, 1000),
            ("Łódź", 90001, 1000),
            ("Wrocław", 50001, 1000),
            ("Poznań", 60001, 1000),
            ("Gdańsk", 80001, 1000),
            ("Szczecin", 70001, 800),
            ("Bydgoszcz", 85001, 800),
            ("Lublin", 20001, 900),
            ("Białystok", 15001, 600),
            ("Katowice", 40001, 800),
            ("Gdynia", 81001, 600),
            ("Częstochowa", 42200, 100),
            ("Rzeszów", 35001, 300),
            ("Toruń", 87100, 40),
            ("Zielona Góra", 65001, 200),
        ],
        postal="pl",
        legal=["Sp. z o.o."] * 6 + ["S.A.", "sp.k.", "sp.j."],
        industry=_PL_INDUSTRY,
        industry_first=True,
        mailboxes=["biuro", "biuro", "kontakt", "ksiegowosc", "faktury"],
    ),
    dict(
        code="SE",
        share=0.05,
        local="Sverige",
        tld="se",
        phone="46",
        currency="SEK",
        main_share=0.8,
        languages=["sv-SE"] * 6 + ["sv", "sv_SE", "SV-se"],
        first=_SE_FIRST,
        last=_SE_LAST,
        streets=_SE_STREETS,
        street_style="after",
        cities=[
            ("Stockholm", 11120, 3000),
            ("Göteborg", 41101, 3000),
            ("Malmö", 21111, 1500),
            ("Uppsala", 75220, 300),
            ("Västerås", 72210, 300),
            ("Örebro", 70210, 300),
            ("Linköping", 58220, 300),
            ("Helsingborg", 25220, 300),
            ("Jönköping", 55310, 300),
            ("Norrköping", 60220, 300),
            ("Umeå", 90325, 300),
            ("Luleå", 97231, 200),
        ],
        postal="se",
        legal=["AB"] * 8 + ["HB", "KB", "AB (publ)"],
        industry=_SE_INDUSTRY,
        industry_first=False,
        mailboxes=["info", "info", "kontakt", "ekonomi", "faktura"],
    ),
    dict(
        code="DK",
        share=0.03,
        local="Danmark",
        tld="dk",
        phone="45",
        currency="DKK",
        main_share=0.8,
        languages=["da-DK"] * 5 + ["da", "da_dk"],
        first=_DK_FIRST,
        last=_DK_LAST,
        streets=_DK_STREETS,
        street_style="after",
        cities=[
            ("København", 1050, 2400),
            ("Aarhus", 8000, 300),
            ("Odense", 5000, 300),
            ("Aalborg", 9000, 300),
            ("Esbjerg", 6700, 50),
            ("Randers", 8900, 60),
            ("Kolding", 6000, 50),
            ("Vejle", 7100, 20),
            ("Horsens", 8700, 10),
            ("Næstved", 4700, 10),
        ],
        postal="d4",
        legal=["ApS"] * 5 + ["A/S"] * 3 + ["I/S", "IVS"],
        industry=_DK_INDUSTRY,
        industry_first=False,
        mailboxes=["info", "info", "kontakt", "bogholderi", "faktura"],
    ),
    dict(
        code="NO",
        share=0.02,
        local="Norge",
        tld="no",
        phone="47",
        currency="NOK",
        main_share=0.8,
        languages=["nb-NO"] * 4 + ["no", "nn-NO", "nb_no"],
        first=_NO_FIRST,
        last=_NO_LAST,
        streets=_NO_STREETS,
        street_style="after",
        cities=[
            ("Oslo", 150, 1000),
            ("Bergen", 5003, 100),
            ("Trondheim", 7010, 100),
            ("Stavanger", 4005, 50),
            ("Drammen", 3011, 40),
            ("Kristiansand", 4608, 50),
            ("Tromsø", 9008, 30),
            ("Ålesund", 6002, 20),
            ("Bodø", 8003, 20),
            ("Fredrikstad", 1606, 20),
        ],
        postal="d4",
        legal=["AS"] * 6 + ["ASA", "ANS", "DA"],
        industry=_NO_INDUSTRY,
        industry_first=False,
        mailboxes=["post", "post", "firmapost", "regnskap", "faktura"],
    ),
    dict(
        code="FI",
        share=0.02,
        local="Suomi",
        tld="fi",
        phone="358",
        currency="EUR",
        main_share=1.0,
        languages=["fi-FI"] * 5 + ["fi", "sv-FI", "fi_fi"],
        first=_FI_FIRST,
        last=_FI_LAST,
        streets=_FI_STREETS,
        street_style="after",
        cities=[
            ("Helsinki", 100, 900),
            ("Espoo", 2100, 700),
            ("Tampere", 33100, 700),
            ("Vantaa", 1300, 700),
            ("Oulu", 90100, 600),
            ("Turku", 20100, 800),
            ("Jyväskylä", 40100, 600),
            ("Lahti", 15100, 800),
            ("Kuopio", 70100, 800),
            ("Hämeenlinna", 13100, 500),
            ("Seinäjoki", 60100, 300),
        ],
        postal="d5",
        legal=["Oy"] * 7 + ["Oyj", "Ky", "Ay"],
        industry=_FI_INDUSTRY,
        industry_first=True,
        mailboxes=["info", "info", "asiakaspalvelu", "laskutus", "kirjanpito"],
    ),
]

ROLES = [
    "Einkauf",
    "Buchhaltung",
    "Geschäftsführung",
    "Vertrieb",
    "Logistik",
    "Acheteur",
    "Comptabilité",
    "Direction générale",
    "Responsabile acquisti",
    "Amministrazione",
    "Compras",
    "Contabilidad",
    "Inkoop",
    "Administratie",
    "Zakupy",
    "Księgowość",
    "Inköp",
    "Ekonomi",
    "Indkøb",
    "Innkjøp",
    "Hankinta",
    "Purchasing",
    "Accounts Payable",
    "CEO",
    "Sales",
    "Technik / IT",
    "Lager & Versand",
    "Qualitätssicherung (QS)",
]

# Free-text note fragments; some with commas, quotes, a leading '-', '=' or '+', and newlines.
NOTES = [
    "Lieferung nur werktags, 8-16 Uhr",
    "Rechnung per E-Mail an die Buchhaltung",
    "Zahlungsziel 30 Tage netto",
    "-3% Skonto bei Zahlung innerhalb von 10 Tagen",
    'Bitte "Lieferschein" beilegen',
    "Ansprechpartner wechselt zum 01.04.",
    "Rahmenvertrag Nr. 2023/117, gültig bis 31.12.",
    "Anlieferung über Tor 3\nLKW max. 7,5 t",
    "Paiement à 30 jours fin de mois",
    "Livraison : quai n° 3, entrée arrière",
    'Client "VIP" – ne pas relancer',
    'Consegna al piano terra, citofonare "Magazzino"',
    "Pagamento con RiBa a 60 gg",
    "Entrega de lunes a viernes, 9:00–14:00",
    "Factura electrónica obligatoria (FACe)",
    "Levering via achterdeur; bel vooraf",
    "Płatność przelewem, 14 dni",
    "Leverans till lastkaj 2, ring innan",
    "Levering kun hverdage",
    "Credit limit EUR 50.000,00 – reviewed yearly",
    "=Sonderkondition laut Vertrag",
    "+ Mindermengenzuschlag entfällt",
    "Old ERP id: 4711; migrated 2019",
    "Keine Anrufe vor 9 Uhr\nZentrale bevorzugen",
    "Mahnsperre bis Klärung der Gutschrift",
    "Lieferadresse abweichend, siehe Auftrag",
    'Kunde seit 1998 – "Stammkunde"',
    "Sammelrechnung monatlich",
    "Incoterms: DAP Hamburg",
    "PO-Nummer auf jeder Rechnung angeben!",
]

NOTE_SUFFIXES_CHANGED = [
    "Neue Zahlungsbedingungen ab 01.03.",
    "Adresse geprüft, 2024",
    "Conditions révisées",
    "Condizioni aggiornate",
    "Kreditlimit erhöht",
]

ACCENT_MAP = {
    "ä": "ae",
    "ö": "oe",
    "ü": "ue",
    "ß": "ss",
    "à": "a",
    "á": "a",
    "â": "a",
    "ã": "a",
    "å": "a",
    "æ": "ae",
    "ç": "c",
    "è": "e",
    "é": "e",
    "ê": "e",
    "ë": "e",
    "ì": "i",
    "í": "i",
    "î": "i",
    "ï": "i",
    "ñ": "n",
    "ò": "o",
    "ó": "o",
    "ô": "o",
    "õ": "o",
    "ø": "o",
    "œ": "oe",
    "ù": "u",
    "ú": "u",
    "û": "u",
    "ł": "l",
    "ś": "s",
    "ż": "z",
    "ź": "z",
    "ć": "c",
    "ń": "n",
    "ą": "a",
    "ę": "e",
}

BOOL_TRUE = ["true"] * 5 + ["TRUE", "True", "1", "1", "yes", "Y", "x", "X"]
BOOL_FALSE = ["false"] * 5 + ["FALSE", "0", "0", "no", "N", "n"]

BAD_CURRENCIES = ["EUX", "€", "EURO", "Euro", "SFR", "zł", "kr", "E", "12", "US$", ""]
BAD_LANGUAGES = ["xx-YY", "de_DEU", "deutsch", "DE-DEU", "fr-FRA", "english", "1234", "en_ZZZ", ""]
BAD_EMAILS = [
    "anna@",
    "a b@c.de",
    "info@@firma.de",
    "@firma.de",
    "info.firma.de",
    "info@firma..de",
    "buchhaltung@ firma.de",
    "kontakt(at)firma.de",
]
BAD_BOOLEANS = ["maybe", "ja", "oui", "sí", "2", "wahr", "-", "vielleicht"]


# --------------------------------------------------------------------------------------------
# Public constants (the tests and the benchmark use them)
# --------------------------------------------------------------------------------------------

HEADER = [
    "erp_customer_number",
    "name",
    "email",
    "default_currency",
    "default_language",
    "notes",
    "billing_street",
    "billing_city",
    "billing_postal_code",
    "billing_country",
    "shipping_street",
    "shipping_city",
    "shipping_postal_code",
    "shipping_country",
    "contact_email",
    "contact_name",
    "contact_phone",
    "contact_role",
    "contact_is_primary",
]
VALID_CURRENCIES = frozenset({"EUR", "CHF", "SEK", "PLN", "DKK", "GBP", "NOK"})
VALID_LANGUAGES = frozenset(
    {t.lower().replace("_", "-") for c in COUNTRIES for t in c["languages"]} | {"en", "en-gb"}
)
VALID_BOOLEANS = frozenset({"true", "false", "1", "0", "yes", "no", "y", "n", "x", ""})
# Syntax check used by the tests; every valid address this generator writes passes it.
EMAIL_PATTERN = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"

ERROR_RATE = 0.02
# Contacts per customer: 0..3; a customer with no contact still has one row.
_CONTACTS_P = [0.08, 0.19, 0.30, 0.43]
_DUPLICATE_CONTACT_P = 0.04  # customers whose first contact appears twice (email case variant)
_MOVED_ROW_P = 0.003  # customers whose last row comes at the end of the file
_ID_START = 1000

_N_COUNTRIES = len(COUNTRIES)
_SHARES = np.array([c["share"] for c in COUNTRIES], dtype=np.float64)
_SHARES /= _SHARES.sum()


def _slug(e: pl.Expr) -> pl.Expr:
    return (
        e.str.to_lowercase()
        .str.replace_many(list(ACCENT_MAP), list(ACCENT_MAP.values()))
        .str.replace_all(r"[^a-z0-9-]", "")
    )


class _Table:
    """One list per country, flattened, picked per row with a country index (vectorised)."""

    def __init__(self, key: str):
        lists = [c[key] for c in COUNTRIES]
        self.lens = np.array([len(x) for x in lists], dtype=np.int64)
        self.offs = np.concatenate([[0], np.cumsum(self.lens)[:-1]]).astype(np.int64)
        self.flat = [v for x in lists for v in x]
        self.values = pl.Series(
            key, [v if isinstance(v, str) else v[0] for v in self.flat], dtype=pl.String
        )
        self.slugs = pl.select(_slug(pl.lit(self.values))).to_series()

    def local(self, u: np.ndarray, country: np.ndarray) -> np.ndarray:
        lens = self.lens[country]
        return np.minimum((u * lens).astype(np.int64), lens - 1)

    def get(self, country: np.ndarray, local: np.ndarray) -> pl.Series:
        return self.values.gather(self.offs[country] + local)

    def slug(self, country: np.ndarray, local: np.ndarray) -> pl.Series:
        """The entry in lower-case ASCII for mail addresses (Müller -> mueller)."""
        return self.slugs.gather(self.offs[country] + local)


_FIRST = _Table("first")
_LAST = _Table("last")
_STREETS = _Table("streets")
_CITIES = _Table("cities")
_CITY_BASE = np.array([c[1] for c in _CITIES.flat], dtype=np.int64)
_CITY_SPREAD = np.array([c[2] for c in _CITIES.flat], dtype=np.int64)
_LEGAL = _Table("legal")
_INDUSTRY = _Table("industry")
_LANG = _Table("languages")
_MAILBOX = _Table("mailboxes")
_CODE = pl.Series([c["code"] for c in COUNTRIES])
_LOCAL = pl.Series([c["local"] for c in COUNTRIES])
_TLD = pl.Series([c["tld"] for c in COUNTRIES])
_PHONE_CC = pl.Series([c["phone"] for c in COUNTRIES])
_MAIN_SHARE = np.array([c["main_share"] for c in COUNTRIES])
_IND_FIRST = np.array([c["industry_first"] for c in COUNTRIES])
_STYLE_CODES = {"after": 0, "before": 1, "comma": 2, "es": 3, "pl": 4}
_STYLE = np.array([_STYLE_CODES[c["street_style"]] for c in COUNTRIES])
_POSTAL_CODES = {"d5": 0, "d4": 1, "nl": 2, "pl": 3, "se": 4}
_POSTAL = np.array([_POSTAL_CODES[c["postal"]] for c in COUNTRIES])
_NL_LETTERS = pl.Series(list("ABCDEGHJKLMNPRSTVWXZ"))


def _pick(rng: np.random.Generator, values: list[str], n: int) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(rng.integers(0, len(values), n))


def _rng(seq: np.random.SeedSequence) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seq))


# --------------------------------------------------------------------------------------------
# Column builders (each takes a country index per row and returns polars Series / frames)
# --------------------------------------------------------------------------------------------


def _by_case(df: pl.DataFrame, case: np.ndarray, exprs: list[pl.Expr]) -> pl.Series:
    """Row i gets exprs[case[i]]; each expression is evaluated on its own rows only (a
    when/then chain would evaluate every branch on every row)."""
    parts, where = [], []
    for c, expr in enumerate(exprs):
        idx = np.flatnonzero(case == c)
        if len(idx):
            parts.append(df[idx].select(expr.alias("v")).to_series())
            where.append(idx)
    if not parts:
        return pl.Series("v", [], dtype=pl.String)
    order = np.concatenate(where)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return pl.concat(parts).gather(inverse)


def _cat(*parts: str | pl.Expr) -> pl.Expr:
    """Concatenate literals, "@column" references and expressions: _cat("@st", " ", "@num")."""
    return pl.concat_str(
        [
            p if isinstance(p, pl.Expr) else pl.col(p[1:]) if p.startswith("@") else pl.lit(p)
            for p in parts
        ]
    )


def _company(rng: np.random.Generator, country: np.ndarray) -> pl.DataFrame:
    """Company name and its mail domain."""
    n = len(country)
    pattern = rng.choice(4, size=n, p=[0.35, 0.15, 0.35, 0.15])
    i_l1 = _LAST.local(rng.random(n), country)
    i_l2 = _LAST.local(rng.random(n), country)
    i_f = _FIRST.local(rng.random(n), country)
    legal = _LEGAL.get(country, _LEGAL.local(rng.random(n), country))
    i_ind = _INDUSTRY.local(rng.random(n), country)
    u = rng.random(n)
    tld = np.where(u < 0.85, country, np.where(u < 0.95, _N_COUNTRIES, _N_COUNTRIES + 1))
    df = pl.DataFrame(
        {
            "l1": _LAST.get(country, i_l1),
            "l2": _LAST.get(country, i_l2),
            "f": _FIRST.get(country, i_f),
            "lg": legal,
            "ind": _INDUSTRY.get(country, i_ind),
            "s_l1": _LAST.slug(country, i_l1),
            "s_l2": _LAST.slug(country, i_l2),
            "s_f": _FIRST.slug(country, i_f),
            "s_ind": _INDUSTRY.slug(country, i_ind),
        }
    )
    name = _by_case(
        df,
        np.where((pattern == 2) & _IND_FIRST[country], 4, pattern),
        [
            _cat("@l1", " ", "@lg"),  # Müller GmbH
            _cat("@l1", " & ", "@l2", " ", "@lg"),  # Müller & Schmidt GmbH
            _cat("@l1", " ", "@ind", " ", "@lg"),  # Müller Logistik GmbH
            _cat("@f", " ", "@l1"),  # Anna Müller
            _cat("@ind", " ", "@l1", " ", "@lg"),  # Transports Dubois SARL
        ],
    )
    host = _by_case(
        df,
        pattern,
        [
            pl.col("s_l1"),
            _cat("@s_l1", "-", "@s_l2"),
            _cat("@s_l1", "-", "@s_ind"),
            _cat("@s_f", "-", "@s_l1"),
        ],
    )
    domain = host + "." + pl.concat([_TLD, pl.Series(["com", "eu"])]).gather(tld)
    return pl.DataFrame({"name": name, "_domain": domain})


def _address(
    rng: np.random.Generator, country: np.ndarray, exclude_city: np.ndarray | None = None
) -> pl.DataFrame:
    """Street with house number, city, postal code and country, in each country's style."""
    n = len(country)
    street = _STREETS.get(country, _STREETS.local(rng.random(n), country))
    if exclude_city is None:
        city_local = _CITIES.local(rng.random(n), country)
    else:  # a different city of the same country
        lens = _CITIES.lens[country]
        shift = 1 + (rng.random(n) * np.maximum(lens - 1, 1)).astype(np.int64)
        city_local = (exclude_city + shift) % lens
    flat = _CITIES.offs[country] + city_local
    pc = _CITY_BASE[flat] + (rng.random(n) * _CITY_SPREAD[flat]).astype(np.int64)
    df = pl.DataFrame(
        {
            "st": street,
            "num": rng.integers(1, 180, n),
            "extra": rng.integers(1, 60, n),
            "letter": _pick(rng, ["a", "b", "c", "A", "B", "C", "D"], n),
            "nl": (
                _NL_LETTERS.gather(rng.integers(0, 20, n))
                + _NL_LETTERS.gather(rng.integers(0, 20, n))
            ),
            "pc": pc,
            "code": _CODE.gather(country),
            "local": _LOCAL.gather(country),
        }
    ).with_columns(pl.col("num").cast(pl.String))
    style = _STYLE[country]
    u = rng.random(n)
    case = np.select(
        [style == 0, style == 1, style == 2, style == 3],
        [
            0 + (u < 0.08),
            2 + (u < 0.04) + 2 * ((u >= 0.04) & (u < 0.19)),
            5 + (u >= 0.6),
            7 + (u < 0.3),
        ],
        9 + (u < 0.4),
    )
    street = _by_case(
        df,
        case,
        [
            _cat("@st", " ", "@num"),  # Hauptstraße 12
            _cat("@st", " ", "@num", "@letter"),  # Hauptstraße 12a
            _cat("@num", " ", "@st"),  # 12 rue de la Paix
            _cat("@num", " bis ", "@st"),  # 12 bis rue de la Paix
            _cat("@num", ", ", "@st"),  # 12, rue de la Paix
            _cat("@st", ", ", "@num"),  # Via Roma, 12
            _cat("@st", " ", "@num"),  # Via Roma 12
            _cat("@st", ", ", "@num"),  # Calle Mayor, 12
            _cat(
                "@st",
                ", ",
                "@num",
                ", ",
                (pl.col("extra") % 8 + 1).cast(pl.String),
                "º ",
                pl.col("letter").str.to_uppercase(),
            ),  # Calle Mayor, 12, 3º B
            _cat("@st", " ", "@num"),  # ul. Długa 12
            _cat("@st", " ", "@num", "/", pl.col("extra").cast(pl.String)),  # ul. Długa 12/3
        ],
    )
    d5 = pl.col("pc").cast(pl.String).str.zfill(5)
    d4 = pl.col("pc").cast(pl.String).str.zfill(4)
    postal = _by_case(
        df,
        _POSTAL[country],
        [
            d5,  # 10115
            d4,  # 1010
            _cat(d4, " ", "@nl"),  # 1011 AB
            _cat(d5.str.slice(0, 2), "-", d5.str.slice(2)),  # 00-950
            _cat(d5.str.slice(0, 3), " ", d5.str.slice(3)),  # 111 20
        ],
    )
    u = rng.random(n)
    ctry = _by_case(
        df,
        np.where(u < 0.94, 0, np.where(u < 0.99, 1, 2)),
        [
            pl.col("code"),
            pl.col("local"),
            pl.col("code").str.to_lowercase(),
        ],
    )
    return pl.DataFrame(
        {
            "street": street,
            "city": _CITIES.get(country, city_local),
            "postal_code": postal,
            "country": ctry,
            "_city_local": city_local,
        }
    )


def _phone(rng: np.random.Generator, country: np.ndarray) -> pl.Series:
    """Phone numbers in the usual international and national notations, for example
    +49 30 1234567, +49 (0)30 1234567, 0049 30 1234567, +49301234567, +49-30-1234567,
    030 1234567, +49 30 123 4567."""
    n = len(country)
    fmt = rng.choice(7, size=n, p=[0.35, 0.10, 0.10, 0.15, 0.08, 0.07, 0.15])
    #                      0     1       2     3    4    5    6
    lead = pl.Series(["+", "+", "00", "+", "+", "0", "+"]).gather(fmt)
    sep1 = pl.Series([" ", " (0)", " ", "", "-", "", " "]).gather(fmt)
    sep2 = pl.Series([" ", " ", " ", "", "-", " ", " "]).gather(fmt)
    sep3 = pl.Series(["", "", "", "", "", "", " "]).gather(fmt)
    cc = pl.concat([_PHONE_CC, pl.Series([""])]).gather(  # national notation: no code
        np.where(fmt == 5, len(_PHONE_CC), country)
    )
    width = rng.integers(3, 6, n)  # digits after the first three of the subscriber number
    low = (10**width + rng.integers(0, 10**width)).astype(np.int64)
    ext = rng.random(n) < 0.03
    df = pl.DataFrame(
        {
            "lead": lead,
            "cc": cc,
            "s1": sep1,
            "area": rng.integers(1, 999, n),
            "s2": sep2,
            "hi": rng.integers(100, 1000, n),
            "s3": sep3,
            "lo": low,
            "ext": pl.Series(np.where(ext, rng.integers(10, 300, n), 0)),
        }
    )
    return df.select(
        pl.concat_str(
            [
                "lead",
                "cc",
                "s1",
                pl.col("area").cast(pl.String),
                "s2",
                pl.col("hi").cast(pl.String),
                "s3",
                pl.col("lo").cast(pl.String).str.slice(1),
                pl.when(pl.col("ext") > 0)
                .then(pl.concat_str([pl.lit(" ext. "), pl.col("ext").cast(pl.String)]))
                .otherwise(pl.lit("")),
            ]
        ).alias("contact_phone")
    ).to_series()


def _notes(rng: np.random.Generator, n: int) -> pl.Series:
    df = pl.DataFrame(
        {
            "k": rng.choice(4, size=n, p=[0.47, 0.35, 0.14, 0.04]),
            "a": _pick(rng, NOTES, n),
            "b": _pick(rng, NOTES, n),
            "c": _pick(rng, NOTES, n),
            "sep": _pick(rng, [" / ", "\n", "; ", ". "], n),
        }
    )
    k = pl.col("k")
    return df.select(
        pl.when(k == 0)
        .then(pl.lit(""))
        .when(k == 1)
        .then(pl.col("a"))
        .when(k == 2)
        .then(pl.concat_str([pl.col("a"), pl.col("sep"), pl.col("b")]))
        .otherwise(pl.concat_str([pl.col("a"), pl.col("b"), pl.col("c")], separator="; "))
        .alias("notes")
    ).to_series()


# --------------------------------------------------------------------------------------------
# Pipeline: customers -> rows (contacts) -> [variant changes] -> quirks and invalid rows
# --------------------------------------------------------------------------------------------


def _put(s: pl.Series, mask: np.ndarray, values) -> pl.Series:
    """`s` with the entries where `mask` holds replaced by `values` (a Series for those
    entries, or a function of them). Used for the rare variants, so that string work is done
    only on the few entries that vary."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return s
    new = values(s.gather(idx)) if callable(values) else values
    s = s.clone()
    s.scatter(idx, new)
    return s


def _blank(s: pl.Series) -> pl.Series:
    return s.str.slice(0, 0)


_CURRENCY_CODES = ["EUR", "CHF", "SEK", "PLN", "DKK", "GBP", "NOK"]
_COUNTRY_CURRENCY = np.array([_CURRENCY_CODES.index(c["currency"]) for c in COUNTRIES])


def _customers(rng: np.random.Generator, n: int, id_start: int) -> pl.DataFrame:
    country = rng.choice(_N_COUNTRIES, size=n, p=_SHARES)
    ids = id_start + np.cumsum(rng.integers(1, 21, size=n))
    id_fmt = rng.choice(4, size=n, p=[0.70, 0.12, 0.08, 0.10])
    company = _company(rng, country)
    billing = _address(rng, country)
    other = _address(rng, country)
    ship_mode = rng.choice(3, size=n, p=[0.56, 0.28, 0.16])  # same / none / different

    # ERP number: mostly zero-padded to 10 digits, some with a prefix or 8 digits
    number = _by_case(
        pl.DataFrame({"id": ids}).with_columns(pl.col("id").cast(pl.String)),
        id_fmt,
        [
            pl.col("id").str.zfill(10),  # 0000104233
            _cat("K", pl.col("id").str.zfill(8)),  # K00104233
            _cat("C-", pl.col("id").str.zfill(9)),  # C-000104233
            pl.col("id").str.zfill(8),  # 00104233
        ],
    )

    # name: 1% decomposed Unicode (NFD), 1% with surrounding spaces
    u = rng.random(n)
    name = _put(company["name"], u < 0.01, lambda s: s.str.normalize("NFD"))
    name = _put(name, (u >= 0.01) & (u < 0.02), lambda s: "  " + s + " ")

    # company email: a mailbox at the company's domain; some capitalised, padded or missing
    u = rng.random(n)
    mailbox = _MAILBOX.get(country, _MAILBOX.local(rng.random(n), country))
    mailbox = _put(mailbox, u < 0.05, lambda s: s.str.to_titlecase())
    email = mailbox + "@" + company["_domain"]
    email = _put(email, u < 0.01, lambda s: " " + s + " ")
    email = _put(email, u >= 0.82, _blank)

    # currency: the country's, else EUR; some GBP; some in lower or title case
    u = rng.random(n)
    cur_idx = np.where(u < _MAIN_SHARE[country], _COUNTRY_CURRENCY[country], 0)
    cur_idx[u < 0.015] = _CURRENCY_CODES.index("GBP")
    currency = pl.Series(_CURRENCY_CODES).gather(cur_idx)
    u = rng.random(n)
    currency = _put(currency, u < 0.06, lambda s: s.str.to_lowercase())
    currency = _put(currency, (u >= 0.06) & (u < 0.07), lambda s: s.str.to_titlecase())

    # language: the country's tags (with _ and case variants), some English, some re-cased
    u = rng.random(n)
    language = _LANG.get(country, _LANG.local(rng.random(n), country))
    language = _put(language, u < 0.03, _pick(rng, ["en-GB", "en", "en-gb"], int((u < 0.03).sum())))
    language = _put(language, u > 0.98, lambda s: s.str.to_uppercase())
    language = _put(language, (u > 0.96) & (u <= 0.98), lambda s: s.str.to_lowercase())

    df = pl.DataFrame(
        {
            "_cid": np.arange(n, dtype=np.int64),
            "_id": ids,
            "_country": country,
            "_domain": company["_domain"],
            "_city_local": billing["_city_local"],
            "_ship_same": ship_mode == 0,
            "_ship": ship_mode,
            "erp_customer_number": number,
            "name": name,
            "email": email,
            "default_currency": currency,
            "default_language": language,
            "notes": _notes(rng, n),
            "billing_street": billing["street"],
            "billing_city": billing["city"],
            "billing_postal_code": billing["postal_code"],
            "billing_country": billing["country"],
            "_o_street": other["street"],
            "_o_city": other["city"],
            "_o_pc": other["postal_code"],
            "_o_country": other["country"],
        }
    )
    ship = pl.col("_ship")

    def shipping(same: str, other_col: str) -> pl.Expr:
        return (
            pl.when(ship == 0)
            .then(pl.col(same))
            .when(ship == 1)
            .then(pl.lit(""))
            .otherwise(pl.col(other_col))
        )

    return df.select(
        pl.exclude("_ship", "_o_street", "_o_city", "_o_pc", "_o_country"),
        shipping("billing_street", "_o_street").alias("shipping_street"),
        shipping("billing_city", "_o_city").alias("shipping_city"),
        shipping("billing_postal_code", "_o_pc").alias("shipping_postal_code"),
        shipping("billing_country", "_o_country").alias("shipping_country"),
    )


def _rows(rng: np.random.Generator, cust: pl.DataFrame) -> pl.DataFrame:
    """One row per customer-contact pair, customer columns repeated on each row."""
    n = cust.height
    country_c = cust["_country"].to_numpy()
    k = rng.choice(4, size=n, p=_CONTACTS_P)
    nrows = np.maximum(k, 1)
    total = int(nrows.sum())
    starts = np.cumsum(nrows) - nrows
    cid = np.repeat(np.arange(n, dtype=np.int64), nrows)
    slot = np.arange(total, dtype=np.int64) - np.repeat(starts, nrows)
    has = slot < k[cid]
    country = country_c[cid]

    # contacts: distinct first names within a customer, one mail scheme per company
    first_local = (_FIRST.local(rng.random(n), country_c)[cid] + slot * 7) % _FIRST.lens[country]
    last_local = _LAST.local(rng.random(total), country)
    first = _FIRST.get(country, first_local)
    last = _LAST.get(country, last_local)
    fs = _FIRST.slug(country, first_local)
    ls = _LAST.slug(country, last_local)
    scheme = rng.choice(4, size=n, p=[0.60, 0.15, 0.15, 0.10])[cid]
    # first.last, f.last, firstlast, first_last
    local = (
        _put(fs, scheme == 1, lambda s: s.str.slice(0, 1))
        + pl.Series([".", ".", "", "_"]).gather(scheme)
        + ls
    )

    u = rng.random(total)
    cname = first + " " + last
    cname = _put(cname, u < 0.06, (last + ", " + first).filter(pl.Series(u < 0.06)))
    cname = _put(cname, (u >= 0.06) & (u < 0.10), lambda s: "Dr. " + s)
    m = (u >= 0.10) & (u < 0.12)
    cname = _put(cname, m, (first + " " + last.str.to_uppercase()).filter(pl.Series(m)))

    prim_slot = (rng.random(n) * nrows).astype(np.int64)
    prim_kind = rng.choice(3, size=n, p=[0.88, 0.02, 0.10])[cid]  # one / two / none
    is_prim = (slot == prim_slot[cid]) | (
        (prim_kind == 1) & (k[cid] >= 2) & (slot == (prim_slot[cid] + 1) % nrows[cid])
    )
    is_prim &= (prim_kind != 2) & has
    u = rng.random(total)
    primary = _put(_pick(rng, BOOL_FALSE, total), u >= 0.6, _blank)
    primary = _put(primary, is_prim, _pick(rng, BOOL_TRUE, int(is_prim.sum())))
    primary = _put(primary, ~has, _blank)
    phone = _put(_phone(rng, country), ~has | (rng.random(total) >= 0.9), _blank)
    role = _put(_pick(rng, ROLES, total), ~has | (rng.random(total) >= 0.75), _blank)
    case = rng.choice(3, size=total, p=[0.85, 0.10, 0.05])  # lower, Title, UPPER

    df = pl.DataFrame(
        {
            "_cid": cid,
            "_has": has,
            "_fs": fs,
            "_ls": ls,
            "_local": local,
            "_case": case,
            "_domain": cust["_domain"].gather(cid),
            "_cname": cname,
            "contact_phone": phone,
            "contact_role": role,
            "contact_is_primary": primary,
        }
    )

    # the same contact twice for some customers, its email in another case; sometimes a new phone
    dup_c = np.flatnonzero((k >= 1) & (rng.random(n) < _DUPLICATE_CONTACT_P))
    new_phone = _phone(rng, country_c[dup_c])
    swap = rng.random(len(dup_c)) < 0.3
    dup = df[starts[dup_c]]
    dup = dup.with_columns(
        pl.Series("_case", np.where(dup["_case"].to_numpy() == 0, 1, 0)),
        _put(dup["contact_phone"], swap, new_phone.filter(pl.Series(swap))),
    )
    df = pl.concat([df, dup])

    case = df["_case"].to_numpy()
    local = _put(df["_local"], case == 1, lambda s: s.str.to_titlecase())
    local = _put(local, case == 2, lambda s: s.str.to_uppercase())
    has = df["_has"].to_numpy()
    df = df.with_columns(
        _put(local + "@" + df["_domain"], ~has, _blank).alias("contact_email"),
        _put(df["_cname"], ~has, _blank).alias("contact_name"),
    )

    # order: customer by customer, rows by slot, a duplicate after its customer's rows; a few
    # customers have their last row moved to the end of the file
    moved = (nrows >= 2) & (rng.random(n) < _MOVED_ROW_P)
    all_cid = np.concatenate([cid, dup_c])
    all_slot = np.concatenate([slot, np.full(len(dup_c), 9, dtype=np.int64)])
    is_last = np.concatenate([slot == nrows[cid] - 1, np.zeros(len(dup_c), dtype=bool)])
    primary_key = np.where(is_last & moved[all_cid], n + all_cid, all_cid)
    order = np.lexsort((all_slot, primary_key))
    df = df[order]
    customer_cols = [c for c in cust.columns if c not in ("_cid", "_domain")]
    return pl.concat(
        [
            df.select(
                "_cid",
                "_fs",
                "_ls",
                "_cname",
                "contact_email",
                "contact_name",
                "contact_phone",
                "contact_role",
                "contact_is_primary",
            ),
            cust.select(customer_cols)[df["_cid"].to_numpy()],
        ],
        how="horizontal",
    )


def _scatter(df: pl.DataFrame, column: str, idx: np.ndarray, values) -> pl.DataFrame:
    if len(idx) == 0:
        return df
    s = df[column].clone()
    s.scatter(idx, values)
    return df.with_columns(s)


def _error_plan(rng: np.random.Generator, n: int, error_rate: float) -> dict[str, Any]:
    """Where the oddities and invalid values go, and which: drawn before the data is final so
    that a variant can see which rows will lose their name."""
    plan: dict[str, Any] = {
        "pad": np.flatnonzero(rng.random(n) < 0.003),  # " 0000123" (valid once trimmed)
        "conflict": np.flatnonzero(rng.random(n) < 0.002),  # name in upper case on one row
    }
    k = round(error_rate * n)
    rows = np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, dtype=np.int64)
    kind = rng.choice(len(_ERROR_KINDS), size=k, p=[p for _, p in _ERROR_KINDS])
    for t, (name, _) in enumerate(_ERROR_KINDS):
        plan[name] = rows[kind == t]
    plan["currency_values"] = _pick(rng, BAD_CURRENCIES, len(plan["currency"]))
    plan["language_values"] = _pick(rng, BAD_LANGUAGES, len(plan["language"]))
    plan["email_values"] = _pick(rng, BAD_EMAILS, len(plan["email"]))
    plan["contact_email_at_end"] = rng.random(len(plan["contact_email"])) < 0.5
    plan["name_values"] = _pick(rng, ["", "", "   "], len(plan["blank_name"]))
    plan["boolean_values"] = _pick(rng, BAD_BOOLEANS, len(plan["boolean"]))
    return plan


# kinds of invalid rows and their shares
_ERROR_KINDS = [
    ("currency", 0.18),
    ("language", 0.16),
    ("email", 0.12),
    ("contact_email", 0.14),
    ("blank_name", 0.12),
    ("contact_without_email", 0.14),
    ("boolean", 0.14),
]


def _quirks_and_errors(df: pl.DataFrame, plan: dict[str, Any]) -> pl.DataFrame:
    """Valid oddities (padded numbers, conflicting names) and the invalid rows of the plan."""
    i = plan["pad"]
    df = _scatter(df, "erp_customer_number", i, " " + df["erp_customer_number"].gather(i))
    i = plan["conflict"]
    df = _scatter(df, "name", i, df["name"].gather(i).str.to_uppercase())
    df = _scatter(df, "default_currency", plan["currency"], plan["currency_values"])
    df = _scatter(df, "default_language", plan["language"], plan["language_values"])
    df = _scatter(df, "email", plan["email"], plan["email_values"])
    i = plan["contact_email"]  # "anna.schmidt@" or "anna schmidt@domain"
    bad = (
        df[i]
        .select(
            pl.when(pl.Series(plan["contact_email_at_end"]))
            .then(pl.concat_str([pl.col("_fs"), pl.lit("."), pl.col("_ls"), pl.lit("@")]))
            .otherwise(
                pl.concat_str(
                    [
                        pl.col("_fs"),
                        pl.lit(" "),
                        pl.col("_ls"),
                        pl.lit("@"),
                        pl.col("contact_email").str.split("@").list.last(),
                    ]
                )
            )
        )
        .to_series()
    )
    df = _scatter(df, "contact_email", i, bad)
    df = _scatter(df, "name", plan["blank_name"], plan["name_values"])
    i = plan["contact_without_email"]  # contact columns filled, contact email blank
    df = _scatter(df, "contact_email", i, _blank(df["contact_email"].gather(i)))
    df = _scatter(df, "contact_name", i, df["_cname"].gather(i))
    df = _scatter(df, "contact_is_primary", plan["boolean"], plan["boolean_values"])
    return df


def _apply_changes(
    rng: np.random.Generator,
    rows: pl.DataFrame,
    cust: pl.DataFrame,
    fraction: float,
    blank_name_rows: np.ndarray,
) -> pl.DataFrame:
    """Change `fraction` of the customers: a new name, a move to another city, new notes, or
    new contact phone numbers. Every chosen customer ends up with at least one changed value."""
    n = cust.height
    k = round(fraction * n)
    if k == 0:
        return rows
    chosen = np.sort(rng.choice(n, size=k, replace=False))
    kind = rng.choice(4, size=k)  # 0 name, 1 city, 2 notes, 3 phone
    row_cid = rows["_cid"].to_numpy()
    phone_filled = (rows["contact_phone"] != "").to_numpy()
    has_phone = np.bincount(row_cid, weights=phone_filled, minlength=n) > 0
    kind[(kind == 3) & ~has_phone[chosen]] = 2
    # a new name would not show on a customer whose every row gets a blank name
    blanked = np.bincount(row_cid[blank_name_rows], minlength=n) >= np.bincount(
        row_cid, minlength=n
    )
    kind[(kind == 0) & blanked[chosen]] = 2
    country = cust["_country"].to_numpy()[chosen]

    old = cust[chosen]
    new_name = _company(rng, country)["name"]
    new_name = pl.select(
        pl.when(new_name == old["name"]).then(new_name + " Holding").otherwise(new_name)
    ).to_series()
    new_addr = _address(rng, country, exclude_city=old["_city_local"].to_numpy())
    new_notes = _pick(rng, NOTES, k) + " – " + _pick(rng, NOTE_SUFFIXES_CHANGED, k)
    new_notes = pl.select(
        pl.when(new_notes == old["notes"]).then(new_notes + " (geändert)").otherwise(new_notes)
    ).to_series()

    pos = np.full(n, -1, dtype=np.int64)
    pos[chosen] = np.arange(k)
    rpos = pos[row_cid]
    rkind = np.where(rpos >= 0, kind[np.maximum(rpos, 0)], -1)

    i = np.flatnonzero(rkind == 0)
    rows = _scatter(rows, "name", i, new_name.gather(rpos[i]))
    i = np.flatnonzero(rkind == 1)
    same = rows["_ship_same"].to_numpy()
    for part, col in (("street", "street"), ("city", "city"), ("postal_code", "postal_code")):
        values = new_addr[col].gather(rpos[i])
        rows = _scatter(rows, f"billing_{part}", i, values)
        j = same[i]
        rows = _scatter(rows, f"shipping_{part}", i[j], values.filter(pl.Series(j)))
    i = np.flatnonzero(rkind == 2)
    rows = _scatter(rows, "notes", i, new_notes.gather(rpos[i]))
    i = np.flatnonzero((rkind == 3) & phone_filled)
    row_country = cust["_country"].to_numpy()[row_cid[i]]
    rows = _scatter(rows, "contact_phone", i, _phone(rng, row_country))
    return rows


def _pipeline(
    seq: np.random.SeedSequence,
    customers: int,
    id_start: int,
    error_rate: float,
    change_seq: np.random.SeedSequence | None = None,
    changed: float = 0.0,
) -> tuple[pl.DataFrame, int]:
    s_cust, s_rows, s_err = seq.spawn(3)
    cust = _customers(_rng(s_cust), customers, id_start)
    rows = _rows(_rng(s_rows), cust)
    plan = _error_plan(_rng(s_err), rows.height, error_rate)
    if change_seq is not None and changed > 0:
        rows = _apply_changes(_rng(change_seq), rows, cust, changed, plan["blank_name"])
    rows = _quirks_and_errors(rows, plan)
    max_id = int(cust["_id"].to_numpy().max()) if customers else id_start
    return rows.select(HEADER), max_id


def generate(customers: int, seed: int, error_rate: float = ERROR_RATE) -> pl.DataFrame:
    """The base export for `seed`: one row per customer-contact pair, all columns text."""
    rows, _ = _pipeline(np.random.SeedSequence(seed), customers, _ID_START, error_rate)
    return rows


def generate_variant(
    customers: int,
    base_seed: int,
    seed: int = 0,
    changed: float = 0.10,
    new: float = 0.05,
    error_rate: float = ERROR_RATE,
) -> pl.DataFrame:
    """A re-sync of the base export of `base_seed`: `changed` of its customers changed, the
    others' rows as in the base, and `new` x customers new customers (new numbers) at the end.
    `seed` picks which customers change and how."""
    variant_seq = np.random.SeedSequence([base_seed, seed, 0x5EED])
    s_change, s_new = variant_seq.spawn(2)
    rows, max_id = _pipeline(
        np.random.SeedSequence(base_seed),
        customers,
        _ID_START,
        error_rate,
        change_seq=s_change,
        changed=changed,
    )
    n_new = round(new * customers)
    if n_new:
        extra, _ = _pipeline(s_new, n_new, max_id + 1000, error_rate)
        rows = pl.concat([rows, extra])
    return rows


def write_csv(df: pl.DataFrame, path: str | Path) -> None:
    """RFC 4180 CSV, UTF-8, LF line ends; empty cells unquoted, fields quoted only as needed."""
    df.select(
        pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in HEADER
    ).write_csv(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate",
        description="Write a seeded, realistic ERP customer export (CSV) for benchmarks.",
    )
    parser.add_argument("out", type=Path, help="CSV file to write")
    parser.add_argument(
        "--customers",
        type=int,
        default=1000,
        help="customers in the base file (default 1000; rows are about 2.2x)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=42,
        help="seed of the base file; with --variant-of-seed, of the changes",
    )
    parser.add_argument(
        "--variant-of-seed",
        type=int,
        default=None,
        metavar="S",
        help="write a re-sync variant of the base file of seed S",
    )
    parser.add_argument(
        "--changed",
        type=float,
        default=0.10,
        help="variant: share of customers changed (default 0.10)",
    )
    parser.add_argument(
        "--new",
        type=float,
        default=0.05,
        help="variant: new customers as a share of --customers (default 0.05)",
    )
    parser.add_argument(
        "--error-rate", type=float, default=ERROR_RATE, help="share of invalid rows (default 0.02)"
    )
    args = parser.parse_args(argv)
    if (
        args.customers < 0
        or not (0 <= args.changed <= 1)
        or args.new < 0
        or not (0 <= args.error_rate <= 1)
    ):
        parser.error(
            "--customers, --changed, --new and --error-rate must be non-negative "
            "(--changed and --error-rate at most 1)"
        )

    started = time.perf_counter()
    if args.variant_of_seed is None:
        df = generate(args.customers, args.seed, args.error_rate)
    else:
        df = generate_variant(
            args.customers, args.variant_of_seed, args.seed, args.changed, args.new, args.error_rate
        )
    generated = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(df, args.out)
    done = time.perf_counter()
    size = args.out.stat().st_size
    print(
        f"{args.out}: {df.height:,} rows, {size / 1e6:,.1f} MB "
        f"(generate {generated - started:.1f}s, write {done - generated:.1f}s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
